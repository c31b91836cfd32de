//! `dispersy keygen` and `dispersy id`: member keys.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dispersy::crypto::PrivateKey;
use dispersy_net::keyfile;

/// Arguments of `dispersy keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Write the private key here (mode 0600), as py-ipv8 writes key files. Without it the
    /// private key is printed as hex.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Replace an existing key file.
    #[arg(long)]
    force: bool,
}

/// Arguments of `dispersy id`.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// A private key file.
    file: PathBuf,
}

/// Generates a key, saves or prints it, and prints its member id.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let mut out = std::io::stdout().lock();
    match &args.out {
        Some(path) if args.force => keyfile::save(path, &key)?,
        Some(path) => keyfile::create(path, &key).map_err(|e| match e {
            keyfile::Error::Exists { .. } => {
                anyhow::anyhow!("{e}; pass --force to replace it")
            }
            e => e.into(),
        })?,
        None => writeln!(out, "private-key: {}", hex::encode(&key.to_bin()[..]))?,
    }
    writeln!(out, "member-id: {}", key.member_id())?;
    if let Some(path) = &args.out {
        tracing::info!(path = %path.display(), "wrote the private key");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the member id and public key of a key file.
pub fn id(args: &IdArgs) -> anyhow::Result<ExitCode> {
    let key = keyfile::load(&args.file).context("cannot show the member id")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "member-id: {}", key.member_id())?;
    writeln!(out, "public-key: {}", hex::encode(key.public().to_bin()))?;
    Ok(ExitCode::SUCCESS)
}
