//! The permission messages: authorize and revoke (grants), destroy-community, dynamic-settings.

use bytes::BufMut;

use super::super::DecodeError;
use super::super::codec::{Reader, put_varlen_h};
use super::super::packet::EncodeError;
use super::super::packet::KeyLookup;
use super::{Violation, read_key};
use crate::crypto::PublicKey;
use crate::ids::MetaId;

/// Permission bits granted or revoked on one meta-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Permissions(pub u8);

impl Permissions {
    /// May create messages of the meta-message (linear resolution).
    pub const PERMIT: Permissions = Permissions(0x01);
    /// May grant permissions on the meta-message.
    pub const AUTHORIZE: Permissions = Permissions(0x02);
    /// May revoke permissions on the meta-message.
    pub const REVOKE: Permissions = Permissions(0x04);
    /// May undo other members' messages of the meta-message.
    pub const UNDO: Permissions = Permissions(0x08);
    /// Every defined bit.
    pub const ALL: Permissions = Permissions(0x0f);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    #[must_use]
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// The single permissions set here, lowest bit first.
    pub fn iter(self) -> impl Iterator<Item = Permissions> {
        [Self::PERMIT, Self::AUTHORIZE, Self::REVOKE, Self::UNDO]
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Dispersy's name of a single permission.
    pub fn name(self) -> &'static str {
        match self {
            Self::PERMIT => "permit",
            Self::AUTHORIZE => "authorize",
            Self::REVOKE => "revoke",
            Self::UNDO => "undo",
            _ => "mixed",
        }
    }
}

/// Permissions granted to (or revoked from) one member in an authorize or revoke message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionGrant {
    /// The member whose permissions change.
    pub member: PublicKey,
    /// For each meta-message, the permission bits that change.
    pub permissions: Vec<(MetaId, Permissions)>,
}

/// Hard or soft destruction of a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestroyKind {
    /// Keep data up to the destroy's global time, accept nothing newer.
    Soft,
    /// Remove everything but the destroy message and its proof chain.
    Hard,
}

impl DestroyKind {
    /// The payload byte: `'s'` or `'h'`.
    pub fn to_byte(self) -> u8 {
        match self {
            DestroyKind::Soft => b's',
            DestroyKind::Hard => b'h',
        }
    }

    /// Reads the payload byte. Dispersy treats anything but `'s'` as hard; we accept only the
    /// two bytes it writes.
    pub fn from_byte(b: u8) -> Result<DestroyKind, DecodeError> {
        match b {
            b's' => Ok(DestroyKind::Soft),
            b'h' => Ok(DestroyKind::Hard),
            _ => Err(DecodeError::Invalid {
                field: "destroy kind",
                reason: "must be 's' or 'h'",
            }),
        }
    }
}

const NO_MEMBERS: Violation = ("permissions", "at least one member is required");
const NO_PERMISSIONS: Violation = ("permission count", "must be 1 to 255");
const BAD_BITS: Violation = ("permission bits", "must be a non-empty subset of 0x0f");

fn decode_error((field, reason): Violation) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

fn encode_error((field, reason): Violation) -> EncodeError {
    EncodeError::Invalid { field, reason }
}

fn valid_bits(bits: Permissions) -> bool {
    bits.0 != 0 && bits.0 & !Permissions::ALL.0 == 0
}

/// Reads the grants of an authorize or revoke payload (all of it).
pub(super) fn decode_grants(
    r: &mut Reader<'_>,
    keys: &dyn KeyLookup,
) -> Result<Vec<PermissionGrant>, DecodeError> {
    let mut grants = Vec::new();
    while !r.is_empty() {
        let member = read_key(r, "authorized member key", keys)?;
        let n = r.u8("permission count")?;
        if n == 0 {
            return Err(decode_error(NO_PERMISSIONS));
        }
        let mut permissions = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let meta = MetaId(r.u8("permission meta-message")?);
            let bits = Permissions(r.u8("permission bits")?);
            if !valid_bits(bits) {
                return Err(decode_error(BAD_BITS));
            }
            permissions.push((meta, bits));
        }
        grants.push(PermissionGrant {
            member,
            permissions,
        });
    }
    if grants.is_empty() {
        return Err(decode_error(NO_MEMBERS));
    }
    Ok(grants)
}

pub(super) fn grants_len(grants: &[PermissionGrant]) -> usize {
    grants
        .iter()
        .map(|g| 2 + g.member.bin_len() + 1 + 2 * g.permissions.len())
        .sum()
}

pub(super) fn encode_grants(
    grants: &[PermissionGrant],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if grants.is_empty() {
        return Err(encode_error(NO_MEMBERS));
    }
    for g in grants {
        let n = u8::try_from(g.permissions.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or(encode_error(NO_PERMISSIONS))?;
        if !g.permissions.iter().all(|(_, bits)| valid_bits(*bits)) {
            return Err(encode_error(BAD_BITS));
        }
        put_varlen_h(out, g.member.to_bin());
        out.put_u8(n);
        for (meta, bits) in &g.permissions {
            out.put_u8(meta.0);
            out.put_u8(bits.0);
        }
    }
    Ok(())
}

const NO_SETTINGS: Violation = ("dynamic settings", "at least one change is required");

/// Reads a dynamic-settings payload: `(meta, 'r', policy index)` triples.
pub(super) fn decode_settings(r: &mut Reader<'_>) -> Result<Vec<(MetaId, u8)>, DecodeError> {
    let mut settings = Vec::new();
    while !r.is_empty() {
        let meta = MetaId(r.u8("meta-message")?);
        if r.u8("policy kind")? != b'r' {
            return Err(DecodeError::Invalid {
                field: "policy kind",
                reason: "only resolution ('r') exists",
            });
        }
        settings.push((meta, r.u8("policy index")?));
    }
    if settings.is_empty() {
        return Err(decode_error(NO_SETTINGS));
    }
    Ok(settings)
}

pub(super) fn encode_settings(
    settings: &[(MetaId, u8)],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if settings.is_empty() {
        return Err(encode_error(NO_SETTINGS));
    }
    for (meta, index) in settings {
        out.put_u8(meta.0);
        out.put_u8(b'r');
        out.put_u8(*index);
    }
    Ok(())
}
