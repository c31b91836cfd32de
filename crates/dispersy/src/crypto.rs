//! Identities: keys in py-ipv8's "LibNaCL" format, member ids, signatures and batch verification.
//!
//! A member is an Ed25519 key pair bundled with an independent X25519 key pair, serialised as
//! py-ipv8 does:
//!
//! | blob | layout | size |
//! |---|---|---|
//! | public | `"LibNaCLPK:"` ‖ X25519 public key ‖ Ed25519 verify key | 74 |
//! | private | `"LibNaCLSK:"` ‖ X25519 secret key ‖ Ed25519 seed | 74 |
//!
//! The member id is the SHA-1 of the 74-byte public blob; a community id is the member id of the
//! community's master key. Signatures are plain RFC 8032 Ed25519 over the raw bytes (no pre-hash),
//! bit-identical with py-ipv8's.
//!
//! Verification follows ZIP 215 (through `ed25519-zebra`), under which batch verification and
//! single verification always give the same answer. That matters here: every node must reach the
//! same verdict on every message whether it checked it alone or in a burst, or stores diverge.
//!
//! Dispersy's legacy elliptic-curve keys (binary Koblitz curves, DER encoded) are recognised so
//! the dissector can show such packets and compute their signature length, but they cannot be
//! verified or generated: [`PublicKey::verify`] reports [`SignatureError::Unsupported`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes};
use rand_core::{CryptoRng, RngCore};
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::ids::{CommunityId, MemberId};

/// ASCII tag that starts a public key blob.
pub const PUBLIC_TAG: &[u8; 10] = b"LibNaCLPK:";
/// ASCII tag that starts a private key blob.
pub const PRIVATE_TAG: &[u8; 10] = b"LibNaCLSK:";
/// Length of both the public and the private key blob.
pub const KEY_BIN_LEN: usize = 74;
/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Why a key blob could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The blob is shorter or longer than its type requires.
    #[error("key blob has {got} bytes, expected {expected}")]
    BadLength {
        /// Bytes present.
        got: usize,
        /// Bytes a key of this type has.
        expected: usize,
    },
    /// The blob starts with a private tag where a public key was expected, or the reverse.
    #[error("expected a {expected} key, found a {found} key")]
    WrongType {
        /// What the caller asked for.
        expected: &'static str,
        /// What the blob holds.
        found: &'static str,
    },
    /// Neither a LibNaCL tag nor a DER elliptic-curve key.
    #[error("unknown key format (neither \"LibNaCLPK:\"/\"LibNaCLSK:\" nor a DER EC key)")]
    UnknownFormat,
    /// The Ed25519 verify key is not a valid curve point.
    #[error("the Ed25519 verify key is not a valid curve point")]
    InvalidPoint,
    /// The Ed25519 verify key has small order: anyone could forge its signatures.
    #[error("the Ed25519 verify key is weak (small order)")]
    WeakKey,
    /// A DER elliptic-curve key that is malformed or names a curve we do not know.
    #[error("malformed or unsupported DER elliptic-curve key: {0}")]
    BadDer(&'static str),
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not valid for this key and message.
    #[error("invalid signature")]
    Invalid,
    /// The key is a legacy elliptic-curve key; we can parse but not verify those.
    #[error("cannot verify signatures of legacy {0} keys")]
    Unsupported(EcCurve),
}

/// A legacy Dispersy/py-ipv8 elliptic curve, recognised by its DER object identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// sect163k1 ("very-low"), used by py-ipv8's trackers.
    Sect163k1,
    /// sect233k1 ("low").
    Sect233k1,
    /// sect409k1 ("medium"), Dispersy's default member key.
    Sect409k1,
    /// sect571k1 ("high" in py-ipv8 3.2.1).
    Sect571k1,
    /// sect571r1 ("high" in Dispersy and older py-ipv8).
    Sect571r1,
    /// NIST P-256.
    Prime256v1,
    /// NIST P-384.
    Secp384r1,
    /// NIST P-521.
    Secp521r1,
}

impl EcCurve {
    /// Field size in bits.
    pub fn degree(self) -> usize {
        match self {
            EcCurve::Sect163k1 => 163,
            EcCurve::Sect233k1 => 233,
            EcCurve::Sect409k1 => 409,
            EcCurve::Sect571k1 | EcCurve::Sect571r1 => 571,
            EcCurve::Prime256v1 => 256,
            EcCurve::Secp384r1 => 384,
            EcCurve::Secp521r1 => 521,
        }
    }

    /// Length of a signature: `r ‖ s`, each padded to the field size in bytes.
    pub fn signature_len(self) -> usize {
        2 * self.degree().div_ceil(8)
    }

    /// OpenSSL's name for the curve.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::Sect163k1 => "sect163k1",
            EcCurve::Sect233k1 => "sect233k1",
            EcCurve::Sect409k1 => "sect409k1",
            EcCurve::Sect571k1 => "sect571k1",
            EcCurve::Sect571r1 => "sect571r1",
            EcCurve::Prime256v1 => "prime256v1",
            EcCurve::Secp384r1 => "secp384r1",
            EcCurve::Secp521r1 => "secp521r1",
        }
    }

    fn from_oid(oid: &[u8]) -> Option<EcCurve> {
        // 1.3.132.0.x is encoded 2b 81 04 00 x; prime256v1 is 1.2.840.10045.3.1.7.
        const CERTICOM: [u8; 4] = [0x2b, 0x81, 0x04, 0x00];
        const P256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        if oid == P256 {
            return Some(EcCurve::Prime256v1);
        }
        match oid {
            [a, b, c, d, x] if [*a, *b, *c, *d] == CERTICOM => match x {
                0x01 => Some(EcCurve::Sect163k1),
                0x1a => Some(EcCurve::Sect233k1),
                0x24 => Some(EcCurve::Sect409k1),
                0x26 => Some(EcCurve::Sect571k1),
                0x27 => Some(EcCurve::Sect571r1),
                0x22 => Some(EcCurve::Secp384r1),
                0x23 => Some(EcCurve::Secp521r1),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A member's public key.
///
/// Equality and hashing are by the serialised blob, so two keys are equal exactly when their
/// member ids are. Cloning is cheap (the parsed key is shared), so messages and candidates can
/// each hold their author's key.
#[derive(Clone)]
pub struct PublicKey(Arc<PublicRepr>);

#[derive(Clone)]
enum PublicRepr {
    Ed25519 {
        bin: [u8; KEY_BIN_LEN],
        verification: VerificationKey,
        member: MemberId,
    },
    LegacyEc {
        der: Box<[u8]>,
        curve: EcCurve,
        member: MemberId,
    },
}

fn sha1_member_id(bin: &[u8]) -> MemberId {
    MemberId(Sha1::digest(bin).into())
}

impl PublicKey {
    /// Parses a public key blob: exactly 74 bytes of `LibNaCLPK:`, or a DER `SubjectPublicKeyInfo`
    /// of a legacy elliptic-curve key.
    pub fn from_bin(bin: &[u8]) -> Result<PublicKey, KeyError> {
        if bin.starts_with(PUBLIC_TAG) {
            let fixed: [u8; KEY_BIN_LEN] = bin.try_into().map_err(|_| KeyError::BadLength {
                got: bin.len(),
                expected: KEY_BIN_LEN,
            })?;
            let vk_bytes: [u8; 32] = fixed[42..74]
                .try_into()
                .expect("invariant: 74 - 42 = 32 bytes");
            let verification =
                VerificationKey::try_from(vk_bytes).map_err(|_| KeyError::InvalidPoint)?;
            if is_small_order(&vk_bytes) {
                return Err(KeyError::WeakKey);
            }
            return Ok(PublicKey(Arc::new(PublicRepr::Ed25519 {
                bin: fixed,
                verification,
                member: sha1_member_id(&fixed),
            })));
        }
        if bin.starts_with(PRIVATE_TAG) {
            return Err(KeyError::WrongType {
                expected: "public",
                found: "private",
            });
        }
        if bin.first() == Some(&0x30) {
            let curve = der::ec_public_key_curve(bin)?;
            return Ok(PublicKey(Arc::new(PublicRepr::LegacyEc {
                der: bin.into(),
                curve,
                member: sha1_member_id(bin),
            })));
        }
        Err(KeyError::UnknownFormat)
    }

    /// The serialised blob, exactly as it goes on the wire.
    pub fn to_bin(&self) -> &[u8] {
        match &*self.0 {
            PublicRepr::Ed25519 { bin, .. } => bin,
            PublicRepr::LegacyEc { der, .. } => der,
        }
    }

    /// Length of [`PublicKey::to_bin`].
    pub fn bin_len(&self) -> usize {
        self.to_bin().len()
    }

    /// SHA-1 of the public blob.
    pub fn member_id(&self) -> MemberId {
        match &*self.0 {
            PublicRepr::Ed25519 { member, .. } | PublicRepr::LegacyEc { member, .. } => *member,
        }
    }

    /// The community id this key names when it is a community's master key.
    pub fn community_id(&self) -> CommunityId {
        self.member_id().into()
    }

    /// Length of signatures made with this key.
    pub fn signature_len(&self) -> usize {
        match &*self.0 {
            PublicRepr::Ed25519 { .. } => ED25519_SIGNATURE_LEN,
            PublicRepr::LegacyEc { curve, .. } => curve.signature_len(),
        }
    }

    /// The legacy curve, when this is not an Ed25519 key.
    pub fn legacy_curve(&self) -> Option<EcCurve> {
        match &*self.0 {
            PublicRepr::Ed25519 { .. } => None,
            PublicRepr::LegacyEc { curve, .. } => Some(*curve),
        }
    }

    /// The X25519 half of an Ed25519 member key (used only for key agreement, never here).
    pub fn x25519_bytes(&self) -> Option<[u8; 32]> {
        match &*self.0 {
            PublicRepr::Ed25519 { bin, .. } => bin[10..42].try_into().ok(),
            PublicRepr::LegacyEc { .. } => None,
        }
    }

    /// Checks one signature over `message` (ZIP 215 rules).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        match &*self.0 {
            PublicRepr::Ed25519 { verification, .. } => {
                let sig = signature.ed25519().ok_or(SignatureError::Invalid)?;
                verification
                    .verify(&sig, message)
                    .map_err(|_| SignatureError::Invalid)
            }
            PublicRepr::LegacyEc { curve, .. } => Err(SignatureError::Unsupported(*curve)),
        }
    }
}

/// Whether a compressed Edwards point has small order (anyone could forge its signatures).
fn is_small_order(bytes: &[u8; 32]) -> bool {
    curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
        .decompress()
        .is_none_or(|p| p.is_small_order())
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_bin() == other.to_bin()
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_bin().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            PublicRepr::Ed25519 { member, .. } => write!(f, "PublicKey(ed25519, {member})"),
            PublicRepr::LegacyEc { curve, member, .. } => {
                write!(f, "PublicKey({curve}, {member})")
            }
        }
    }
}

/// A signature: 64 bytes for Ed25519, `2 * ceil(degree / 8)` for legacy EC keys.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature(SignatureRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum SignatureRepr {
    Ed25519([u8; ED25519_SIGNATURE_LEN]),
    Other(Box<[u8]>),
}

impl Signature {
    /// Wraps raw signature bytes (any length; verification checks it against the key).
    pub fn from_bytes(bytes: &[u8]) -> Signature {
        match <[u8; ED25519_SIGNATURE_LEN]>::try_from(bytes) {
            Ok(fixed) => Signature(SignatureRepr::Ed25519(fixed)),
            Err(_) => Signature(SignatureRepr::Other(bytes.into())),
        }
    }

    /// An all-zero placeholder of `len` bytes, as used for a not-yet-made second signature.
    pub fn empty(len: usize) -> Signature {
        Signature::from_bytes(&vec![0u8; len])
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            SignatureRepr::Ed25519(b) => b,
            SignatureRepr::Other(b) => b,
        }
    }

    /// Whether every byte is zero (a placeholder, not a signature).
    pub fn is_empty(&self) -> bool {
        self.as_bytes().iter().all(|b| *b == 0)
    }

    fn ed25519(&self) -> Option<ed25519_zebra::Signature> {
        match &self.0 {
            SignatureRepr::Ed25519(b) => Some(ed25519_zebra::Signature::from_bytes(b)),
            SignatureRepr::Other(_) => None,
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.as_bytes();
        write!(f, "Signature({}..)", hex::encode(&b[..b.len().min(6)]))
    }
}

/// A member's private key: the Ed25519 signing key and the X25519 secret.
pub struct PrivateKey {
    x25519: x25519_dalek::StaticSecret,
    signing: SigningKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Generates a fresh key; the two halves are independent, as py-ipv8 makes them.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> PrivateKey {
        let mut x = Zeroizing::new([0u8; 32]);
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut x[..]);
        rng.fill_bytes(&mut seed[..]);
        PrivateKey::from_parts(*x, *seed).expect("invariant: a random key has a valid public half")
    }

    /// Parses a 74-byte `LibNaCLSK:` blob.
    pub fn from_bin(bin: &[u8]) -> Result<PrivateKey, KeyError> {
        if bin.starts_with(PUBLIC_TAG) {
            return Err(KeyError::WrongType {
                expected: "private",
                found: "public",
            });
        }
        if !bin.starts_with(PRIVATE_TAG) {
            return Err(if bin.first() == Some(&0x30) {
                KeyError::BadDer("legacy elliptic-curve private keys are not supported")
            } else {
                KeyError::UnknownFormat
            });
        }
        if bin.len() != KEY_BIN_LEN {
            return Err(KeyError::BadLength {
                got: bin.len(),
                expected: KEY_BIN_LEN,
            });
        }
        let x: [u8; 32] = bin[10..42].try_into().expect("invariant: 32 bytes");
        let seed: [u8; 32] = bin[42..74].try_into().expect("invariant: 32 bytes");
        PrivateKey::from_parts(x, seed)
    }

    fn from_parts(x25519_secret: [u8; 32], seed: [u8; 32]) -> Result<PrivateKey, KeyError> {
        let x25519 = x25519_dalek::StaticSecret::from(x25519_secret);
        let signing = SigningKey::from(seed);
        let mut bin = [0u8; KEY_BIN_LEN];
        bin[..10].copy_from_slice(PUBLIC_TAG);
        bin[10..42].copy_from_slice(x25519_dalek::PublicKey::from(&x25519).as_bytes());
        bin[42..74].copy_from_slice(VerificationKeyBytes::from(&signing).as_ref());
        let public = PublicKey::from_bin(&bin)?;
        Ok(PrivateKey {
            x25519,
            signing,
            public,
        })
    }

    /// The 74-byte `LibNaCLSK:` blob (secret: wipe it after use).
    pub fn to_bin(&self) -> Zeroizing<[u8; KEY_BIN_LEN]> {
        let mut bin = Zeroizing::new([0u8; KEY_BIN_LEN]);
        bin[..10].copy_from_slice(PRIVATE_TAG);
        bin[10..42].copy_from_slice(self.x25519.as_bytes());
        bin[42..74].copy_from_slice(self.signing.as_ref());
        bin
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// SHA-1 of the public blob.
    pub fn member_id(&self) -> MemberId {
        self.public.member_id()
    }

    /// Signs `message` (deterministic RFC 8032 Ed25519).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(SignatureRepr::Ed25519(
            self.signing.sign(message).to_bytes(),
        ))
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        PrivateKey {
            x25519: self.x25519.clone(),
            signing: self.signing,
            public: self.public.clone(),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.member_id())
    }
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The signer's key.
    pub key: &'a PublicKey,
    /// The signed bytes.
    pub message: &'a [u8],
    /// The signature to check.
    pub signature: &'a Signature,
}

/// Checks many signatures at once and returns one verdict per item, in order.
///
/// Ed25519 items are verified together (about twice as fast per signature as one by one). When
/// the batch fails, each item is checked alone to find the bad ones; under ZIP 215 the verdicts
/// are exactly those single verification gives. `rng` supplies the batch's random coefficients.
pub fn verify_batch<R: RngCore + CryptoRng>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Vec<Result<(), SignatureError>> {
    let mut verdicts: Vec<Result<(), SignatureError>> = vec![Ok(()); items.len()];
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    let mut queued = 0usize;
    for (item, verdict) in items.iter().zip(verdicts.iter_mut()) {
        match (&*item.key.0, item.signature.ed25519()) {
            (PublicRepr::Ed25519 { bin, .. }, Some(sig)) => {
                let vk_bytes: [u8; 32] = bin[42..74].try_into().expect("invariant: 32 bytes");
                verifier.queue((VerificationKeyBytes::from(vk_bytes), sig, item.message));
                queued += 1;
            }
            (PublicRepr::Ed25519 { .. }, None) => *verdict = Err(SignatureError::Invalid),
            (PublicRepr::LegacyEc { curve, .. }, _) => {
                *verdict = Err(SignatureError::Unsupported(*curve));
            }
        }
    }
    if queued == 0 || verifier.verify(&mut *rng).is_ok() {
        return verdicts;
    }
    for (item, verdict) in items.iter().zip(verdicts.iter_mut()) {
        if verdict.is_ok() {
            *verdict = item.key.verify(item.message, item.signature);
        }
    }
    verdicts
}

/// Just enough DER to find the named curve of an EC `SubjectPublicKeyInfo`.
mod der {
    use super::{EcCurve, KeyError};

    /// `SEQUENCE { SEQUENCE { OID ecPublicKey, OID curve }, BIT STRING point }`, nothing after.
    pub(super) fn ec_public_key_curve(bin: &[u8]) -> Result<EcCurve, KeyError> {
        const EC_PUBLIC_KEY: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let (outer, rest) = tlv(bin, 0x30)?;
        if !rest.is_empty() {
            return Err(KeyError::BadDer("bytes after the key"));
        }
        let (algorithm, after_algorithm) = tlv(outer, 0x30)?;
        let (algorithm_oid, params) = tlv(algorithm, 0x06)?;
        if algorithm_oid != EC_PUBLIC_KEY {
            return Err(KeyError::BadDer("not an elliptic-curve key"));
        }
        let (curve_oid, _) = tlv(params, 0x06)?;
        let curve = EcCurve::from_oid(curve_oid).ok_or(KeyError::BadDer("unknown curve"))?;
        let (point, trailing) = tlv(after_algorithm, 0x03)?;
        if !trailing.is_empty() || point.len() < 2 {
            return Err(KeyError::BadDer("bad public point"));
        }
        Ok(curve)
    }

    /// Reads one tag-length-value with the given tag; returns (value, rest).
    fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), KeyError> {
        let (&t, rest) = input.split_first().ok_or(KeyError::BadDer("truncated"))?;
        if t != tag {
            return Err(KeyError::BadDer("unexpected tag"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(KeyError::BadDer("truncated"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 2 || rest.len() < n {
                return Err(KeyError::BadDer("bad length"));
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(KeyError::BadDer("truncated"));
        }
        Ok(rest.split_at(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn private_round_trip_and_mid() {
        let key = PrivateKey::generate(&mut rng());
        let bin = key.to_bin();
        let again = PrivateKey::from_bin(&bin[..]).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(key.public().bin_len(), 74);
        let mid = MemberId(Sha1::digest(key.public().to_bin()).into());
        assert_eq!(key.member_id(), mid);
        assert_eq!(
            PublicKey::from_bin(key.public().to_bin()).unwrap(),
            *key.public()
        );
    }

    #[test]
    fn wrong_types_and_lengths_are_errors() {
        let key = PrivateKey::generate(&mut rng());
        assert_eq!(
            PublicKey::from_bin(&key.to_bin()[..]).unwrap_err(),
            KeyError::WrongType {
                expected: "public",
                found: "private"
            }
        );
        assert_eq!(
            PrivateKey::from_bin(key.public().to_bin()).unwrap_err(),
            KeyError::WrongType {
                expected: "private",
                found: "public"
            }
        );
        assert_eq!(
            PublicKey::from_bin(&key.public().to_bin()[..60]).unwrap_err(),
            KeyError::BadLength {
                got: 60,
                expected: 74
            }
        );
        assert_eq!(
            PublicKey::from_bin(b"nonsense").unwrap_err(),
            KeyError::UnknownFormat
        );
        assert_eq!(
            PublicKey::from_bin(&[]).unwrap_err(),
            KeyError::UnknownFormat
        );
    }

    #[test]
    fn weak_key_rejected() {
        let mut bin = [0u8; 74];
        bin[..10].copy_from_slice(PUBLIC_TAG);
        bin[42] = 1; // the identity point
        assert_eq!(PublicKey::from_bin(&bin).unwrap_err(), KeyError::WeakKey);
    }

    #[test]
    fn sign_verify_and_every_bit_flip_fails() {
        let key = PrivateKey::generate(&mut rng());
        let msg = b"the quick brown fox";
        let sig = key.sign(msg);
        key.public().verify(msg, &sig).unwrap();
        for i in 0..sig.as_bytes().len() * 8 {
            let mut bytes = sig.as_bytes().to_vec();
            bytes[i / 8] ^= 1 << (i % 8);
            assert!(
                key.public()
                    .verify(msg, &Signature::from_bytes(&bytes))
                    .is_err()
            );
        }
        assert!(key.public().verify(b"other", &sig).is_err());
        assert!(
            key.public()
                .verify(msg, &Signature::from_bytes(&[1, 2, 3]))
                .is_err()
        );
    }

    #[test]
    fn batch_matches_single() {
        let mut r = rng();
        let keys: Vec<_> = (0..8).map(|_| PrivateKey::generate(&mut r)).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let mut sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let items = |sigs: &[Signature]| -> Vec<Result<(), SignatureError>> {
            let items: Vec<_> = keys
                .iter()
                .zip(&msgs)
                .zip(sigs)
                .map(|((k, m), s)| BatchItem {
                    key: k.public(),
                    message: m,
                    signature: s,
                })
                .collect();
            verify_batch(&items, &mut rng())
        };
        assert!(items(&sigs).iter().all(Result::is_ok));
        sigs[3] = keys[0].sign(b"forged");
        let verdicts = items(&sigs);
        for (i, v) in verdicts.iter().enumerate() {
            assert_eq!(v.is_ok(), i != 3, "item {i}");
        }
    }

    #[test]
    fn legacy_ec_key_is_recognised() {
        // A sect163k1 SubjectPublicKeyInfo (66 bytes) shaped as py-ipv8's trackers send it.
        let mut der = hex::decode("3040301006072a8648ce3d020106052b81040001032c0004").unwrap();
        der.extend((0..42u8).map(|i| i.wrapping_mul(37)));
        assert_eq!(der.len(), 66);
        let key = PublicKey::from_bin(&der).unwrap();
        assert_eq!(key.legacy_curve(), Some(EcCurve::Sect163k1));
        assert_eq!(key.signature_len(), 42);
        assert_eq!(
            key.verify(b"x", &Signature::empty(42)),
            Err(SignatureError::Unsupported(EcCurve::Sect163k1))
        );
        assert!(PublicKey::from_bin(&der[..30]).is_err());
    }

    #[test]
    fn py_ipv8_fixed_key_vector() {
        let sk = hex::decode("4c69624e61434c534b3a000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f").unwrap();
        let key = PrivateKey::from_bin(&sk).unwrap();
        assert_eq!(
            hex::encode(key.public().to_bin()),
            "4c69624e61434c504b3a8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
        );
        assert_eq!(
            key.member_id().to_hex(),
            "f37c16019b1ce0dff055275a54fdfbd8a82ec742"
        );
        assert_eq!(&key.to_bin()[..], &sk[..]);
        let sig = key.sign(b"hello");
        assert_eq!(
            hex::encode(sig.as_bytes()),
            "cfee7c349ba2725fdeb213551b0e0cd6cf1f31ca07c63a226908e5fa3ae30c939b096a0947f10bed8c69b7d3d7033a5f24b329b505627f64e8e3d524dedd4b0a"
        );
    }
}
