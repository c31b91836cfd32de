//! `dispersy decode`: the packet dissector on the command line.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use dispersy::crypto::PublicKey;
use dispersy::wire::dissect::{self, Hint};
use dispersy::wire::{AuthLayout, KeyEncoding, Layout, MAX_PACKET_LEN};

/// Longest input line accepted: a maximal datagram in hex, plus some slack for spaces.
const MAX_LINE_LEN: usize = 2 * MAX_PACKET_LEN + 1024;

/// Arguments of `dispersy decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// One packet in hex, or `-` (the default) to read one hex packet per line from stdin.
    /// Blank lines and lines starting with `#` are skipped.
    #[arg(default_value = "-")]
    packet: String,
    /// The layout of community (non-built-in) messages. Without it they are tried as py-ipv8
    /// signed messages (member key, global time, payload, signature).
    #[arg(long, value_enum)]
    layout: Option<LayoutArg>,
    /// With --layout: the messages carry a sequence number.
    #[arg(long, requires = "layout")]
    sequence: bool,
    /// With --layout: the messages carry a dynamic-resolution byte.
    #[arg(long, requires = "layout")]
    dynamic_resolution: bool,
    /// A public key (hex) to resolve members named by id; repeat for more.
    #[arg(long = "member-key", value_name = "HEX")]
    member_keys: Vec<String>,
    /// Pretty-print the JSON (one object spans several lines).
    #[arg(long)]
    pretty: bool,
}

/// The authentication section of community messages.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    /// No author, no signature.
    Unsigned,
    /// One author named by full key.
    MemberKey,
    /// One author named by member id.
    MemberId,
    /// Two authors named by full keys.
    DoubleKey,
    /// Two authors named by member ids.
    DoubleId,
}

impl DecodeArgs {
    fn hint(&self) -> anyhow::Result<Hint> {
        let layout = self.layout.map(|l| Layout {
            authentication: match l {
                LayoutArg::Unsigned => AuthLayout::None,
                LayoutArg::MemberKey => AuthLayout::Member(KeyEncoding::PublicKey),
                LayoutArg::MemberId => AuthLayout::Member(KeyEncoding::MemberId),
                LayoutArg::DoubleKey => AuthLayout::DoubleMember(KeyEncoding::PublicKey),
                LayoutArg::DoubleId => AuthLayout::DoubleMember(KeyEncoding::MemberId),
            },
            dynamic_resolution: self.dynamic_resolution,
            sequence_number: self.sequence,
        });
        let keys = self
            .member_keys
            .iter()
            .map(|h| {
                let bin = hex::decode(h.trim()).context("--member-key is not hex")?;
                PublicKey::from_bin(&bin).context("--member-key is not a public key")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Hint { layout, keys })
    }
}

/// Decodes the packets; the exit status is non-zero when any could not be decoded completely,
/// had an invalid signature, or was not hex.
pub fn run(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let hint = args.hint()?;
    let mut out = std::io::stdout().lock();
    let mut failures = 0usize;
    let mut report = |what: &str, problem: Option<String>| -> anyhow::Result<()> {
        if let Some(p) = problem {
            failures += 1;
            writeln!(std::io::stderr(), "{what}: {p}")?;
        }
        Ok(())
    };
    if args.packet != "-" {
        let problem = decode_line(&args.packet, &hint, args.pretty, &mut out)?;
        report("packet", problem)?;
    } else {
        let mut stdin = std::io::stdin().lock();
        let mut number = 0usize;
        while let Some(line) = read_line(&mut stdin)? {
            number += 1;
            let what = format!("line {number}");
            let text = match &line {
                Ok(t) => t.trim(),
                Err(unreadable) => {
                    report(&what, Some(unreadable.clone()))?;
                    continue;
                }
            };
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let problem = decode_line(text, &hint, args.pretty, &mut out)?;
            report(&what, problem)?;
        }
    }
    out.flush()?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the dissection of one hex packet; returns what is wrong with it, if anything.
fn decode_line(
    text: &str,
    hint: &Hint,
    pretty: bool,
    out: &mut impl Write,
) -> anyhow::Result<Option<String>> {
    let digits: String = text.split_whitespace().collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    let bytes = match hex::decode(digits) {
        Ok(b) => b,
        Err(e) => return Ok(Some(format!("not a hex packet: {e}"))),
    };
    let d = dissect::dissect(&bytes, hint);
    if pretty {
        serde_json::to_writer_pretty(&mut *out, &d)?;
    } else {
        serde_json::to_writer(&mut *out, &d)?;
    }
    writeln!(out)?;
    Ok(d.problem())
}

/// Reads one line of at most [`MAX_LINE_LEN`] bytes. `Ok(None)` at the end of input; an inner
/// `Err` for a line that is too long or not UTF-8 (the rest of it is skipped).
fn read_line(input: &mut impl BufRead) -> anyhow::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_LINE_LEN as u64 + 1)
        .read_until(b'\n', &mut buf)
        .context("cannot read stdin")?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_LEN && buf.last() != Some(&b'\n') {
        // Skip the rest of the overlong line.
        loop {
            let chunk = input.fill_buf().context("cannot read stdin")?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    input.consume(i + 1);
                    break;
                }
                None => {
                    let len = chunk.len();
                    input.consume(len);
                }
            }
        }
        return Ok(Some(Err(format!(
            "line longer than {MAX_LINE_LEN} characters, longer than any packet"
        ))));
    }
    Ok(Some(
        String::from_utf8(buf).map_err(|_| "not UTF-8 text, so not hex".to_owned()),
    ))
}
