//! The [`Store`] trait on the schema of the `schema` module.
//!
//! Statements name a community by its 20-byte id and find the row's short key with a scalar
//! subquery, `(SELECT n FROM community WHERE id = ?1)`, which SQLite evaluates once per
//! statement; a community nobody stored anything for makes it NULL and matches nothing. Every
//! statement goes through the prepared-statement cache, and each is served by the index named in
//! `docs/storage-schema.md` (a unit test checks the plans).

use dispersy::crypto::PublicKey;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use dispersy::store::{
    CommunityRecord, Fingerprint, Order, RangeQuery, Store, StoreError, StoredMessage, Undone,
};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row, params};

use crate::{MAX_KNOWN_COMMUNITIES, SqliteStore};

use crate::convert::{
    SqlResult, blob, count_to_sql, db_err, digest_to_sql, global_time, gt_bound, gt_to_sql, id20,
    message_from_row, meta_mask, opt_text, too_big, undone_to_sql,
};

/// The community's short key, from its id in parameter 1.
macro_rules! community {
    () => {
        "(SELECT n FROM community WHERE id = ?1)"
    };
}

/// Restricts to the meta-messages whose bits are set in parameters 4..=7 (see [`meta_mask`]).
macro_rules! meta_filter {
    () => {
        "((CASE meta >> 6 WHEN 0 THEN ?4 WHEN 1 THEN ?5 WHEN 2 THEN ?6 ELSE ?7 END) \
         >> (meta & 63)) & 1 = 1"
    };
}

/// The columns [`message_from_row`] decodes.
macro_rules! columns {
    () => {
        "SELECT meta, global_time, member, sequence, second_member, packet, digest, undone, \
         undone_member, undone_global_time FROM message "
    };
}

/// Every statement, by name; the test at the bottom checks each one's query plan.
pub(crate) mod sql {
    pub(crate) const ENSURE_COMMUNITY: &str =
        "INSERT INTO community (id) VALUES (?1) ON CONFLICT (id) DO NOTHING";
    pub(crate) const INSERT: &str = concat!(
        "INSERT INTO message (community, global_time, member, meta, digest, sequence, ",
        "second_member, undone, undone_member, undone_global_time, packet) VALUES (",
        community!(),
        ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ",
        "ON CONFLICT (community, global_time, member) DO NOTHING"
    );
    pub(crate) const REPLACE: &str = concat!(
        "UPDATE message SET meta = ?4, digest = ?5, sequence = ?6, second_member = ?7, ",
        "undone = ?8, undone_member = ?9, undone_global_time = ?10, packet = ?11 ",
        "WHERE community = ",
        community!(),
        " AND global_time = ?2 AND member = ?3"
    );
    pub(crate) const MESSAGE: &str = concat!(
        columns!(),
        "WHERE community = ",
        community!(),
        " AND global_time = ?2 AND member = ?3"
    );
    pub(crate) const DELETE: &str = concat!(
        "DELETE FROM message WHERE community = ",
        community!(),
        " AND global_time = ?2 AND member = ?3"
    );
    pub(crate) const SET_UNDONE: &str = concat!(
        "UPDATE message SET undone = ?4, undone_member = ?5, undone_global_time = ?6 ",
        "WHERE community = ",
        community!(),
        " AND global_time = ?2 AND member = ?3"
    );
    pub(crate) const MAX_GLOBAL_TIME: &str = concat!(
        "SELECT max(global_time) FROM message WHERE community = ",
        community!()
    );
    pub(crate) const LAST_SEQUENCE: &str = concat!(
        "SELECT sequence, global_time FROM message WHERE community = ",
        community!(),
        // Parameters compared with columns go through CAST: the planner checks every term
        // against the partial index's `WHERE`, and a bare parameter met there would make
        // SQLite prepare the statement again each time its value changes.
        " AND member = CAST(?2 AS BLOB) AND meta = CAST(?3 AS INTEGER) AND sequence IS NOT NULL ",
        "ORDER BY sequence DESC, global_time DESC LIMIT 1"
    );
    pub(crate) const BY_SEQUENCE: &str = concat!(
        columns!(),
        "WHERE community = ",
        community!(),
        " AND member = ?2 AND meta = ?3 AND sequence BETWEEN ?4 AND ?5 ",
        "ORDER BY sequence, global_time LIMIT ?6"
    );
    // The wrapping 64-bit sum of digests is the sum of their low halves plus the sum of their
    // high halves shifted up; each half-sum fits an i64 below 2^31 messages, where SQLite's
    // sum() of the full values would fail on overflow.
    pub(crate) const FINGERPRINT: &str = concat!(
        "SELECT count(*), coalesce(sum(digest & 4294967295), 0), ",
        "coalesce(sum((digest >> 32) & 4294967295), 0) FROM message WHERE community = ",
        community!(),
        " AND global_time BETWEEN ?2 AND ?3"
    );
    pub(crate) const FINGERPRINT_METAS: &str = concat!(
        "SELECT count(*), coalesce(sum(digest & 4294967295), 0), ",
        "coalesce(sum((digest >> 32) & 4294967295), 0) FROM message WHERE community = ",
        community!(),
        " AND global_time BETWEEN ?2 AND ?3 AND ",
        meta_filter!()
    );
    pub(crate) const DELETE_UP_TO: &str = concat!(
        "DELETE FROM message WHERE community = ",
        community!(),
        " AND meta = ?2 AND global_time <= ?3"
    );
    pub(crate) const REMOVE_COMMUNITY_MESSAGES: &str =
        concat!("DELETE FROM message WHERE community = ", community!());
    pub(crate) const REMOVE_COMMUNITY: &str = "DELETE FROM community WHERE id = ?1";
    pub(crate) const PUT_MEMBER: &str = "INSERT INTO member (id, public_key) VALUES (?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key";
    pub(crate) const MEMBER: &str = "SELECT public_key FROM member WHERE id = ?1";
    pub(crate) const PUT_COMMUNITY: &str = "INSERT INTO community (id, joined, master, spec, kind) VALUES (?1, 1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET joined = 1, master = excluded.master, \
         spec = excluded.spec, kind = excluded.kind";
    pub(crate) const COMMUNITY: &str =
        "SELECT id, master, spec, kind FROM community WHERE id = ?1 AND joined";
    pub(crate) const COMMUNITIES: &str =
        "SELECT id, master, spec, kind FROM community WHERE joined ORDER BY id";

    /// The range statement for a query's shape: which filters it uses and its order. Parameter
    /// 11 (the limit) is always referenced, so every variant takes the same 11 parameters.
    pub(crate) fn range(query: &super::RangeQuery) -> String {
        let mut sql = String::from(concat!(
            columns!(),
            "WHERE community = ",
            community!(),
            " AND global_time BETWEEN ?2 AND ?3"
        ));
        if query.metas.is_some() {
            sql += concat!(" AND ", meta_filter!());
        }
        if query.member.is_some() {
            sql += " AND member = ?8";
        }
        if query.modulo > 1 {
            // (global_time + offset) % modulo, without overflowing near i64::MAX.
            sql += " AND (global_time % ?9 + ?10 % ?9) % ?9 = 0";
        }
        sql += match query.order {
            super::Order::Ascending => " ORDER BY global_time ASC, member ASC LIMIT ?11",
            super::Order::Descending => " ORDER BY global_time DESC, member DESC LIMIT ?11",
        };
        sql
    }
}

fn community_from_row(row: &Row<'_>) -> Result<CommunityRecord, StoreError> {
    let master = match row.get_ref(1).sql()? {
        ValueRef::Null => None,
        v => Some(
            PublicKey::from_bin(blob("community.master", v)?).map_err(|e| {
                StoreError::Corrupt(format!("community.master is not a public key: {e}"))
            })?,
        ),
    };
    Ok(CommunityRecord {
        id: CommunityId(id20("community.id", row.get_ref(0).sql()?)?),
        master,
        spec: opt_text("community.spec", row.get_ref(2).sql()?)?,
        kind: opt_text("community.kind", row.get_ref(3).sql()?)?
            .ok_or_else(|| StoreError::Corrupt("community.kind is NULL".into()))?,
    })
}

impl SqliteStore {
    /// Runs a message query and decodes every row.
    fn messages(
        &self,
        community: &CommunityId,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).sql()?;
        let mut rows = stmt.query(params).sql()?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().sql()? {
            out.push(message_from_row(community, row)?);
        }
        Ok(out)
    }

    /// Executes one write statement inside the open transaction; returns the rows it changed.
    fn write(&mut self, sql: &str, params: impl rusqlite::Params) -> Result<u64, StoreError> {
        self.begin_write()?;
        let n = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(|e| {
                // The failure may have rolled back rows this cache vouches for.
                self.known_communities.clear();
                db_err(e)
            })?;
        Ok(n as u64)
    }

    /// Writes every column of a message; `insert` adds a row, otherwise an existing one changes.
    fn write_message(&mut self, m: &StoredMessage, insert: bool) -> Result<bool, StoreError> {
        let gt = gt_to_sql(m.global_time).ok_or_else(|| too_big(m.global_time))?;
        let (undone, undone_member, undone_gt) = undone_to_sql(m.undone)?;
        if insert && !self.known_communities.contains(&m.community) {
            self.write(sql::ENSURE_COMMUNITY, [m.community.0])?;
            if self.known_communities.len() >= MAX_KNOWN_COMMUNITIES {
                self.known_communities.clear();
            }
            self.known_communities.insert(m.community);
        }
        let n = self.write(
            if insert { sql::INSERT } else { sql::REPLACE },
            params![
                m.community.0,
                gt,
                m.member.0,
                m.meta.0,
                digest_to_sql(m.digest),
                m.sequence.map(|s| s.0),
                m.second_member.map(|s| s.0),
                undone,
                undone_member,
                undone_gt,
                &m.packet[..],
            ],
        )?;
        self.wrote(if insert { n as i64 } else { 0 })?;
        Ok(n == 1)
    }
}

impl Store for SqliteStore {
    fn put_member(&mut self, key: &PublicKey) -> Result<(), StoreError> {
        self.write(sql::PUT_MEMBER, params![key.member_id().0, key.to_bin()])?;
        self.wrote(0)
    }

    fn member(&self, id: &MemberId) -> Result<Option<PublicKey>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql::MEMBER).sql()?;
        let mut rows = stmt.query([id.0]).sql()?;
        let Some(row) = rows.next().sql()? else {
            return Ok(None);
        };
        let key = PublicKey::from_bin(blob("member.public_key", row.get_ref(0).sql()?)?)
            .map_err(|e| StoreError::Corrupt(format!("member.public_key: {e}")))?;
        if key.member_id() != *id {
            return Err(StoreError::Corrupt(format!(
                "member {id} holds another member's key"
            )));
        }
        Ok(Some(key))
    }

    fn put_community(&mut self, record: &CommunityRecord) -> Result<(), StoreError> {
        self.write(
            sql::PUT_COMMUNITY,
            params![
                record.id.0,
                record.master.as_ref().map(PublicKey::to_bin),
                record.spec,
                record.kind
            ],
        )?;
        self.wrote(0)
    }

    fn community(&self, id: &CommunityId) -> Result<Option<CommunityRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql::COMMUNITY).sql()?;
        let mut rows = stmt.query([id.0]).sql()?;
        rows.next().sql()?.map(community_from_row).transpose()
    }

    fn communities(&self) -> Result<Vec<CommunityRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql::COMMUNITIES).sql()?;
        let mut rows = stmt.query([]).sql()?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().sql()? {
            out.push(community_from_row(row)?);
        }
        Ok(out)
    }

    fn remove_community(&mut self, id: &CommunityId) -> Result<(), StoreError> {
        self.known_communities.remove(id);
        let deleted = self.write(sql::REMOVE_COMMUNITY_MESSAGES, [id.0])?;
        self.wrote(-(deleted as i64))?;
        self.write(sql::REMOVE_COMMUNITY, [id.0])?;
        self.wrote(0)
    }

    fn insert_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.write_message(message, true)
    }

    fn replace_message(&mut self, message: &StoredMessage) -> Result<bool, StoreError> {
        self.write_message(message, false)
    }

    fn message(
        &self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let Some(gt) = gt_to_sql(id.global_time) else {
            return Ok(None);
        };
        let mut found = self.messages(
            community,
            sql::MESSAGE,
            params![community.0, gt, id.member.0],
        )?;
        Ok(found.pop())
    }

    fn delete_message(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
    ) -> Result<bool, StoreError> {
        let Some(gt) = gt_to_sql(id.global_time) else {
            return Ok(false);
        };
        let n = self.write(sql::DELETE, params![community.0, gt, id.member.0])?;
        self.wrote(-(n as i64))?;
        Ok(n == 1)
    }

    fn set_undone(
        &mut self,
        community: &CommunityId,
        id: &MessageId,
        undone: Undone,
    ) -> Result<bool, StoreError> {
        let Some(gt) = gt_to_sql(id.global_time) else {
            return Ok(false);
        };
        let (kind, member, at) = undone_to_sql(undone)?;
        let n = self.write(
            sql::SET_UNDONE,
            params![community.0, gt, id.member.0, kind, member, at],
        )?;
        self.wrote(0)?;
        Ok(n == 1)
    }

    fn max_global_time(&self, community: &CommunityId) -> Result<GlobalTime, StoreError> {
        let max: Option<i64> = self
            .conn
            .prepare_cached(sql::MAX_GLOBAL_TIME)
            .and_then(|mut s| s.query_row([community.0], |r| r.get(0)))
            .sql()?;
        max.map_or(Ok(GlobalTime::ZERO), |gt| {
            global_time("message.global_time", ValueRef::Integer(gt))
        })
    }

    fn last_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
    ) -> Result<Option<(SequenceNumber, GlobalTime)>, StoreError> {
        let found: Option<(i64, i64)> = self
            .conn
            .prepare_cached(sql::LAST_SEQUENCE)
            .and_then(|mut s| {
                s.query_row(params![community.0, member.0, meta.0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .sql()?;
        let Some((seq, gt)) = found else {
            return Ok(None);
        };
        let seq = u32::try_from(seq)
            .map_err(|_| StoreError::Corrupt(format!("message.sequence: {seq} out of range")))?;
        let gt = global_time("message.global_time", ValueRef::Integer(gt))?;
        Ok(Some((SequenceNumber(seq), gt)))
    }

    fn by_sequence(
        &self,
        community: &CommunityId,
        member: &MemberId,
        meta: MetaId,
        low: SequenceNumber,
        high: SequenceNumber,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.messages(
            community,
            sql::BY_SEQUENCE,
            params![
                community.0,
                member.0,
                meta.0,
                low.0,
                high.0,
                count_to_sql(limit)
            ],
        )
    }

    fn range(
        &self,
        community: &CommunityId,
        query: &RangeQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if gt_to_sql(query.low).is_none() {
            return Ok(Vec::new());
        }
        let [a, b, c, d] = meta_mask(query.metas.as_deref());
        self.messages(
            community,
            &sql::range(query),
            params![
                community.0,
                gt_bound(query.low),
                gt_bound(query.high),
                a,
                b,
                c,
                d,
                query.member.map(|m| m.0),
                query.modulo,
                query.offset,
                count_to_sql(query.limit),
            ],
        )
    }

    fn count(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<u64, StoreError> {
        Ok(self.fingerprint(community, metas, low, high)?.count)
    }

    fn fingerprint(
        &self,
        community: &CommunityId,
        metas: Option<&[MetaId]>,
        low: GlobalTime,
        high: GlobalTime,
    ) -> Result<Fingerprint, StoreError> {
        if gt_to_sql(low).is_none() {
            return Ok(Fingerprint::default());
        }
        let (low, high) = (gt_bound(low), gt_bound(high));
        let read = |r: &Row<'_>| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        };
        let (count, lo, hi) = match metas {
            None => self
                .conn
                .prepare_cached(sql::FINGERPRINT)
                .and_then(|mut s| s.query_row(params![community.0, low, high], read)),
            Some(metas) => {
                let [a, b, c, d] = meta_mask(Some(metas));
                self.conn
                    .prepare_cached(sql::FINGERPRINT_METAS)
                    .and_then(|mut s| {
                        s.query_row(params![community.0, low, high, a, b, c, d], read)
                    })
            }
        }
        .sql()?;
        let count = u64::try_from(count)
            .map_err(|_| StoreError::Corrupt(format!("negative row count {count}")))?;
        let sum = lo.cast_unsigned().wrapping_add(hi.cast_unsigned() << 32);
        Ok(Fingerprint { count, sum })
    }

    fn delete_up_to(
        &mut self,
        community: &CommunityId,
        meta: MetaId,
        up_to: GlobalTime,
    ) -> Result<u64, StoreError> {
        let n = self.write(
            sql::DELETE_UP_TO,
            params![community.0, meta.0, gt_bound(up_to)],
        )?;
        self.wrote(-(n as i64))?;
        Ok(n)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.commit_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::msg;
    use rusqlite::StatementStatus;

    fn plan(store: &SqliteStore, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details.join(" | ")
    }

    fn populated(analyze: bool) -> SqliteStore {
        let mut s = SqliteStore::open_in_memory().unwrap();
        for gt in 1..=3000u64 {
            let mut m = msg(1 + (gt % 3) as u8, gt, (gt % 11) as u8);
            m.meta = MetaId((gt % 5) as u8);
            m.sequence = Some(SequenceNumber(gt as u32));
            s.insert_message(&m).unwrap();
        }
        s.commit().unwrap();
        if analyze {
            s.conn.execute_batch("ANALYZE").unwrap();
        }
        s
    }

    /// The planner compares a query's terms with the partial index's `WHERE`; a bound
    /// parameter met there makes SQLite re-prepare the statement whenever its value changes
    /// (a third of a catching-up node's time went into re-preparing `last_sequence`, run for
    /// every sequenced message received). `by_sequence` (answers to missing-sequence, rare)
    /// still re-prepares now and then.
    #[test]
    fn sequence_lookups_are_not_prepared_again_for_new_values() {
        let s = populated(false);
        let community = vec![1u8; 20];
        for sql in [sql::LAST_SEQUENCE] {
            let mut stmt = s.conn.prepare(sql).unwrap();
            for member in 0..3u8 {
                for meta in 0..5i64 {
                    let member = vec![member; 20];
                    let params: Vec<&dyn rusqlite::ToSql> = if sql == sql::LAST_SEQUENCE {
                        vec![&community, &member, &meta]
                    } else {
                        vec![&community, &member, &meta, &1i64, &100i64, &10i64]
                    };
                    let mut rows = stmt.query(params.as_slice()).unwrap();
                    while rows.next().unwrap().is_some() {}
                }
            }
            let reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(reprepared, 0, "{sql}");
        }
    }

    #[test]
    fn every_statement_is_served_by_its_index() {
        // Plans must hold with the planner's defaults (we never run ANALYZE) and with statistics.
        check_plans(&populated(false));
        check_plans(&populated(true));
    }

    fn check_plans(s: &SqliteStore) {
        let expect = [
            (sql::MESSAGE, "INDEX message_id"),
            (sql::DELETE, "INDEX message_id"),
            (sql::SET_UNDONE, "INDEX message_id"),
            (sql::REPLACE, "INDEX message_id"),
            (sql::MAX_GLOBAL_TIME, "INDEX message_"),
            (sql::LAST_SEQUENCE, "COVERING INDEX message_sequence"),
            (sql::BY_SEQUENCE, "INDEX message_sequence"),
            (sql::FINGERPRINT, "COVERING INDEX message_fingerprint"),
            (sql::FINGERPRINT_METAS, "COVERING INDEX message_fingerprint"),
            (sql::DELETE_UP_TO, "INDEX message_meta"),
            (sql::REMOVE_COMMUNITY_MESSAGES, "INDEX message_"),
            (sql::MEMBER, "PRIMARY KEY"),
            (sql::COMMUNITY, "INDEX sqlite_autoindex_community"),
        ];
        for (sql, index) in expect {
            let p = plan(s, sql);
            assert!(p.contains(index), "{sql}\n  plan: {p}\n  expected {index}");
            assert!(!p.contains("SCAN message"), "{sql}\n  plan: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{sql}\n  plan: {p}");
        }
        let mut q = RangeQuery::between(GlobalTime(1), GlobalTime(10), 10);
        for (metas, member, modulo, order, index) in [
            (None, None, 1, Order::Ascending, "INDEX message_id"),
            (
                Some(vec![MetaId(1)]),
                None,
                1,
                Order::Descending,
                "INDEX message_id",
            ),
            (None, None, 3, Order::Descending, "INDEX message_id"),
            (
                None,
                Some(MemberId([1; 20])),
                1,
                Order::Ascending,
                "INDEX message_member",
            ),
            (
                Some(vec![MetaId(2)]),
                Some(MemberId([1; 20])),
                2,
                Order::Descending,
                "INDEX message_member",
            ),
        ] {
            q.metas = metas;
            q.member = member;
            q.modulo = modulo;
            q.order = order;
            let sql = sql::range(&q);
            let p = plan(s, &sql);
            assert!(p.contains(index), "{sql}\n  plan: {p}\n  expected {index}");
            assert!(!p.contains("SCAN"), "{sql}\n  plan: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{sql}\n  plan: {p}");
        }
    }

    #[test]
    fn max_global_time_is_one_seek() {
        let s = populated(false);
        let mut stmt = s.conn.prepare(sql::MAX_GLOBAL_TIME).unwrap();
        let max: i64 = stmt.query_row([[2u8; 20]], |r| r.get(0)).unwrap();
        assert_eq!(max, 2998);
        let steps = stmt.get_status(StatementStatus::VmStep);
        assert!(steps < 50, "{steps} virtual-machine steps for 1,000 rows");
        assert_eq!(stmt.get_status(StatementStatus::FullscanStep), 0);
    }

    #[test]
    fn hostile_values_read_back_as_corrupt() {
        let c = CommunityId([1; 20]);
        let id = MessageId {
            member: MemberId([1; 20]),
            global_time: GlobalTime(1),
        };
        for damage in [
            "UPDATE message SET member = x'0102'",
            "UPDATE message SET meta = 300",
            "UPDATE message SET packet = 'text'",
            "UPDATE message SET global_time = -5",
            "UPDATE message SET sequence = 5000000000",
            "UPDATE message SET sequence = 'x'",
            "UPDATE message SET second_member = 7",
            "UPDATE message SET undone = 1, undone_member = x'01'",
            "UPDATE message SET undone = 2",
            "UPDATE message SET undone = 9",
            "UPDATE message SET digest = 1.5",
        ] {
            let mut s = SqliteStore::open_in_memory().unwrap();
            s.insert_message(&msg(1, 1, 1)).unwrap();
            s.commit().unwrap();
            let key_damaged = damage.contains("global_time") || damage.contains("SET member");
            s.conn.execute_batch(damage).unwrap();
            if damage.contains("global_time") {
                let err = s.max_global_time(&c).unwrap_err();
                assert!(matches!(err, StoreError::Corrupt(_)), "{damage}: {err}");
                continue;
            }
            let q = RangeQuery::between(GlobalTime(0), GlobalTime::MAX, 10);
            let err = s.range(&c, &q).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{damage}: {err}");
            if !key_damaged {
                assert!(
                    matches!(s.message(&c, &id), Err(StoreError::Corrupt(_))),
                    "{damage}"
                );
            }
        }
        let mut s = SqliteStore::open_in_memory().unwrap();
        let key = dispersy::crypto::PrivateKey::generate(&mut rand::thread_rng());
        s.put_member(key.public()).unwrap();
        s.conn
            .execute_batch("UPDATE member SET public_key = x'00'")
            .unwrap();
        assert!(matches!(
            s.member(&key.member_id()),
            Err(StoreError::Corrupt(_))
        ));
        s.conn
            .execute_batch("UPDATE member SET id = x'0000000000000000000000000000000000000000'")
            .unwrap();
        s.put_member(key.public()).unwrap();
        s.conn
            .execute(
                "UPDATE member SET public_key = ?1 WHERE id = x'0000000000000000000000000000000000000000'",
                [key.public().to_bin()],
            )
            .unwrap();
        assert!(matches!(
            s.member(&MemberId([0; 20])),
            Err(StoreError::Corrupt(_))
        ));
        s.put_community(&CommunityRecord {
            id: c,
            master: None,
            spec: None,
            kind: "k".into(),
        })
        .unwrap();
        s.conn
            .execute_batch("UPDATE community SET master = x'01'")
            .unwrap();
        assert!(matches!(s.communities(), Err(StoreError::Corrupt(_))));
        s.conn
            .execute_batch("UPDATE community SET master = NULL, kind = NULL")
            .unwrap();
        assert!(matches!(s.community(&c), Err(StoreError::Corrupt(_))));
    }
}
