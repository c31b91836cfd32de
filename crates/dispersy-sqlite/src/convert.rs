//! Between Rust values and SQLite columns: the integer mappings, row decoding and error mapping.
//!
//! Everything read back from the file is treated as hostile: a value of the wrong type, length
//! or range becomes [`StoreError::Corrupt`], never a panic.

use bytes::Bytes;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::store::{StoreError, StoredMessage, Undone};
use rusqlite::ErrorCode;
use rusqlite::types::ValueRef;

/// The `undone` column: the mark's kind. `ByMessage` also fills `undone_member` and
/// `undone_global_time`.
const UNDONE_NO: i64 = 0;
const UNDONE_BY_POLICY: i64 = 1;
const UNDONE_BY_MESSAGE: i64 = 2;

/// Maps a rusqlite error to the store's error, naming what went wrong.
pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::NotADatabase => StoreError::NotOurs(format!("not a SQLite database: {e}")),
            ErrorCode::DatabaseCorrupt => StoreError::Corrupt(e.to_string()),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Backend(format!(
                "database is locked by another connection (is another node using this data \
                 directory?): {e}"
            )),
            ErrorCode::DiskFull => StoreError::Backend(format!("disk full: {e}")),
            _ => StoreError::Backend(e.to_string()),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StoreError::Corrupt(format!("unexpected value in database: {e}")),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Shorthand for `map_err(db_err)`.
pub(crate) trait SqlResult<T> {
    /// Converts a rusqlite result.
    fn sql(self) -> Result<T, StoreError>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(db_err)
    }
}

fn corrupt(what: &str, v: ValueRef<'_>) -> StoreError {
    StoreError::Corrupt(format!("{what}: unexpected {:?} value", v.data_type()))
}

/// A global time as a SQLite integer: the same number, which fits because stored global times
/// never exceed [`GlobalTime::MAX`] (`i64::MAX`). `None` for larger values.
pub(crate) fn gt_to_sql(gt: GlobalTime) -> Option<i64> {
    i64::try_from(gt.0).ok()
}

/// A query bound: global times above [`GlobalTime::MAX`] clamp to it (nothing is stored there).
pub(crate) fn gt_bound(gt: GlobalTime) -> i64 {
    gt_to_sql(gt).unwrap_or(i64::MAX)
}

/// A digest as a SQLite integer: the same 64 bits, read as signed.
pub(crate) fn digest_to_sql(d: u64) -> i64 {
    d.cast_signed()
}

/// A row count or limit as a SQLite integer, saturating.
pub(crate) fn count_to_sql(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The four 64-bit words of a 256-bit meta-message set, as SQL parameters. `None` (all metas) is
/// all ones.
pub(crate) fn meta_mask(metas: Option<&[MetaId]>) -> [i64; 4] {
    let Some(metas) = metas else {
        return [-1; 4];
    };
    let mut words = [0u64; 4];
    for m in metas {
        words[usize::from(m.0 >> 6)] |= 1 << (m.0 & 63);
    }
    words.map(digest_to_sql)
}

pub(crate) fn global_time(what: &str, v: ValueRef<'_>) -> Result<GlobalTime, StoreError> {
    match v {
        ValueRef::Integer(i) => u64::try_from(i)
            .map(GlobalTime)
            .map_err(|_| StoreError::Corrupt(format!("{what}: negative global time {i}"))),
        v => Err(corrupt(what, v)),
    }
}

pub(crate) fn id20(what: &str, v: ValueRef<'_>) -> Result<[u8; 20], StoreError> {
    match v {
        ValueRef::Blob(b) => <[u8; 20]>::try_from(b)
            .map_err(|_| StoreError::Corrupt(format!("{what}: {} bytes, expected 20", b.len()))),
        v => Err(corrupt(what, v)),
    }
}

pub(crate) fn opt_text(what: &str, v: ValueRef<'_>) -> Result<Option<String>, StoreError> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| StoreError::Corrupt(format!("{what}: text is not UTF-8"))),
        v => Err(corrupt(what, v)),
    }
}

pub(crate) fn blob<'a>(what: &str, v: ValueRef<'a>) -> Result<&'a [u8], StoreError> {
    match v {
        ValueRef::Blob(b) => Ok(b),
        v => Err(corrupt(what, v)),
    }
}

pub(crate) fn integer(what: &str, v: ValueRef<'_>) -> Result<i64, StoreError> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        v => Err(corrupt(what, v)),
    }
}

/// The `undone`, `undone_member` and `undone_global_time` columns of an undo mark.
pub(crate) type UndoneColumns = (i64, Option<[u8; 20]>, Option<i64>);

/// The columns of a mark.
pub(crate) fn undone_to_sql(u: Undone) -> Result<UndoneColumns, StoreError> {
    Ok(match u {
        Undone::No => (UNDONE_NO, None, None),
        Undone::ByPolicy => (UNDONE_BY_POLICY, None, None),
        Undone::ByMessage(id) => {
            let gt = gt_to_sql(id.global_time).ok_or_else(|| too_big(id.global_time))?;
            (UNDONE_BY_MESSAGE, Some(id.member.0), Some(gt))
        }
    })
}

/// The error for a global time SQLite cannot hold.
pub(crate) fn too_big(gt: GlobalTime) -> StoreError {
    StoreError::Backend(format!(
        "global time {gt} exceeds GlobalTime::MAX ({}), the largest a SQLite integer holds",
        GlobalTime::MAX
    ))
}

fn undone_from_row(row: &rusqlite::Row<'_>, first: usize) -> Result<Undone, StoreError> {
    let kind = integer("message.undone", row.get_ref(first).sql()?)?;
    let member = row.get_ref(first + 1).sql()?;
    let gt = row.get_ref(first + 2).sql()?;
    match (kind, member, gt) {
        (UNDONE_NO, ValueRef::Null, ValueRef::Null) => Ok(Undone::No),
        (UNDONE_BY_POLICY, ValueRef::Null, ValueRef::Null) => Ok(Undone::ByPolicy),
        (UNDONE_BY_MESSAGE, member, gt) => Ok(Undone::ByMessage(MessageId {
            member: MemberId(id20("message.undone_member", member)?),
            global_time: global_time("message.undone_global_time", gt)?,
        })),
        (kind, ..) => Err(StoreError::Corrupt(format!(
            "message.undone: inconsistent undo mark (kind {kind})"
        ))),
    }
}

/// Decodes a row selected with the `columns!()` of the `store` module.
pub(crate) fn message_from_row(
    community: &CommunityId,
    row: &rusqlite::Row<'_>,
) -> Result<StoredMessage, StoreError> {
    let meta = integer("message.meta", row.get_ref(0).sql()?)?;
    let meta = u8::try_from(meta)
        .map_err(|_| StoreError::Corrupt(format!("message.meta: {meta} is not a byte")))?;
    let sequence = match row.get_ref(3).sql()? {
        ValueRef::Null => None,
        v => {
            let s = integer("message.sequence", v)?;
            Some(SequenceNumber(u32::try_from(s).map_err(|_| {
                StoreError::Corrupt(format!("message.sequence: {s} out of range"))
            })?))
        }
    };
    let second_member = match row.get_ref(4).sql()? {
        ValueRef::Null => None,
        v => Some(MemberId(id20("message.second_member", v)?)),
    };
    Ok(StoredMessage {
        community: *community,
        meta: MetaId(meta),
        global_time: global_time("message.global_time", row.get_ref(1).sql()?)?,
        member: MemberId(id20("message.member", row.get_ref(2).sql()?)?),
        sequence,
        second_member,
        packet: Bytes::copy_from_slice(blob("message.packet", row.get_ref(5).sql()?)?),
        digest: integer("message.digest", row.get_ref(6).sql()?)?.cast_unsigned(),
        undone: undone_from_row(row, 7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_time_mapping_is_identity_up_to_max() {
        assert_eq!(gt_to_sql(GlobalTime::ZERO), Some(0));
        assert_eq!(gt_to_sql(GlobalTime::MAX), Some(i64::MAX));
        assert_eq!(gt_to_sql(GlobalTime(GlobalTime::MAX.0 + 1)), None);
        assert_eq!(gt_bound(GlobalTime(u64::MAX)), i64::MAX);
        assert_eq!(
            global_time("t", ValueRef::Integer(i64::MAX)),
            Ok(GlobalTime::MAX)
        );
        assert!(global_time("t", ValueRef::Integer(-1)).is_err());
        assert!(global_time("t", ValueRef::Real(1.0)).is_err());
    }

    #[test]
    fn digests_round_trip_through_signed_integers() {
        for d in [0, 1, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            let s = digest_to_sql(d);
            assert_eq!(s.cast_unsigned(), d);
        }
        assert_eq!(digest_to_sql(u64::MAX), -1);
    }

    #[test]
    fn meta_masks_set_one_bit_per_meta() {
        assert_eq!(meta_mask(None), [-1; 4]);
        assert_eq!(meta_mask(Some(&[])), [0; 4]);
        let m = meta_mask(Some(&[MetaId(0), MetaId(63), MetaId(64), MetaId(255)]));
        assert_eq!(m[0], digest_to_sql(1 | 1 << 63));
        assert_eq!(m[1], 1);
        assert_eq!(m[2], 0);
        assert_eq!(m[3], i64::MIN);
    }
}
