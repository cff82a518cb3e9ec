//! One batch, one SQLite transaction: the same steps and statements as
//! Postgres' (`postgres/batch.rs`), each reading its rows from one JSON
//! array parameter through `json_each`. The transaction holds the write lock
//! from its first statement, so the ledger rows it reads cannot change
//! under it: no row locks needed.

use async_trait::async_trait;
use schemas::{ActivityFact, Changes, Id, MissionFact, OffsetRange};
use sqlx::Sqlite;
use sqlx::sqlite::SqliteRow;

use super::{fold, json};

use crate::Result;
use crate::backend::{Key, QuarantineRow, Transaction, check_count};
use crate::rows::{
    self, ACTIVITY, ACTIVITY_FIELDS, Column, Getter, JsonRow, MISSION, MISSION_FIELDS, select_list,
};

/// Now, as the RFC 3339 text the timestamp columns hold.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

type SqliteTransaction = sqlx::Transaction<'static, Sqlite>;

pub(crate) struct Batch {
    tx: SqliteTransaction,
    /// Where the rebuild's reading of the ledger stands (keyset).
    after_activity: Option<Key>,
    after_mission: Option<Key>,
}

impl Batch {
    pub(crate) fn new(tx: SqliteTransaction) -> Batch {
        Batch {
            tx,
            after_activity: None,
            after_mission: None,
        }
    }

    /// The rows of a ledger table with these keys (its first two `fields`).
    async fn keyed(
        &mut self,
        table: &str,
        fields: &[&str],
        keys: &[Key],
    ) -> Result<Vec<SqliteRow>> {
        let (list, k0, k1) = (select_list(fields), fields[0], fields[1]);
        // Built only from the column lists, never from input.
        let sql = format!(
            "SELECT {list} FROM json_each(?1) AS k
             JOIN {table} f ON f.{k0} = k.value->>0 AND f.{k1} = k.value->>1"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json(keys))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    /// Inserts (`new`) or updates ledger rows, sent as one JSON array of
    /// rows, each the values of `columns` in order.
    async fn write_ledger<'f, T, G>(
        &mut self,
        table: &str,
        columns: &[Column<G>],
        facts: &'f [T],
        new: bool,
    ) -> Result<()>
    where
        G: Getter<'f, T>,
    {
        if facts.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let rows: Vec<JsonRow<'_, 'f, G, T>> = facts.iter().map(|f| JsonRow(columns, f)).collect();
        let sql = json_rows_statement(table, &names, new);
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json(&rows))
            .execute(&mut *self.tx)
            .await?;
        check_count(done.rows_affected(), facts.len())
    }
}

#[async_trait]
impl Transaction for Batch {
    /// Moves the partition's stored offset from `expected` to `next` (the
    /// transaction holds the write lock: no other worker waits on a row).
    async fn claim(&mut self, r: &OffsetRange) -> Result<bool> {
        let q = match r.expected {
            Some(expected) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE consumer_offsets SET next_offset = ?3, updated_at = {NOW}
                 WHERE topic = ?1 AND partition = ?2 AND next_offset = ?4"
            )))
            .bind(&*r.topic)
            .bind(r.partition)
            .bind(r.next)
            .bind(expected),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO consumer_offsets (topic, partition, next_offset, updated_at)
                 VALUES (?1, ?2, ?3, {NOW}) ON CONFLICT DO NOTHING"
            )))
            .bind(&*r.topic)
            .bind(r.partition)
            .bind(r.next),
        };
        Ok(q.execute(&mut *self.tx).await?.rows_affected() == 1)
    }

    /// The ledger rows of these keys (the transaction holds the write
    /// lock: they cannot change under it).
    async fn load_activities(&mut self, keys: &[Key]) -> Result<Vec<ActivityFact<'static>>> {
        let rows = self.keyed("activity_facts", &ACTIVITY_FIELDS, keys).await?;
        rows.iter().map(rows::activity).collect()
    }

    async fn load_missions(&mut self, keys: &[Key]) -> Result<Vec<MissionFact>> {
        let rows = self.keyed("mission_facts", &MISSION_FIELDS, keys).await?;
        rows.iter().map(rows::mission).collect()
    }

    /// (activity facts, mission facts) in the ledger.
    async fn ledger_size(&mut self) -> Result<(u64, u64)> {
        let (a, m): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM activity_facts), (SELECT count(*) FROM mission_facts)",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((a as u64, m as u64))
    }

    /// The next `n` activity facts in key order (keyset: each chunk starts
    /// past the last key read, through the primary key's index; the first
    /// past `("", "")`, below every identifier).
    async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>> {
        let list = select_list(&ACTIVITY_FIELDS);
        let (inst, rec) = after(&self.after_activity);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {list} FROM activity_facts f
             WHERE (institution_id, record_id) > (?1, ?2)
             ORDER BY institution_id, record_id LIMIT ?3"
        )))
        .bind(inst)
        .bind(rec)
        .bind(n as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        let facts: Vec<ActivityFact<'static>> =
            rows.iter().map(rows::activity).collect::<Result<_>>()?;
        if let Some(f) = facts.last() {
            self.after_activity = Some((
                f.institution.clone().into_owned(),
                f.record_id.clone().into_owned(),
            ));
        }
        Ok(facts)
    }

    /// The next `n` mission facts in key order.
    async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>> {
        let list = select_list(&MISSION_FIELDS);
        let (inst, mission) = after(&self.after_mission);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {list} FROM mission_facts f
             WHERE (institution_id, mission_id) > (?1, ?2)
             ORDER BY institution_id, mission_id LIMIT ?3"
        )))
        .bind(inst)
        .bind(mission)
        .bind(n as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        let facts: Vec<MissionFact> = rows.iter().map(rows::mission).collect::<Result<_>>()?;
        if let Some(f) = facts.last() {
            self.after_mission = Some((f.institution.clone(), f.mission_id.clone()));
        }
        Ok(facts)
    }

    /// The transaction began IMMEDIATE: it holds the write lock already.
    async fn lock_out_writers(&mut self) -> Result<()> {
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn settle(&mut self) -> Result<()> {
        fold::fold(&mut self.tx).await?;
        Ok(())
    }

    async fn clear(&mut self, table: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn write_activities(&mut self, facts: &[ActivityFact<'_>], new: bool) -> Result<()> {
        self.write_ledger("activity_facts", &ACTIVITY, facts, new)
            .await
    }

    async fn write_missions(&mut self, facts: &[MissionFact], new: bool) -> Result<()> {
        self.write_ledger("mission_facts", &MISSION, facts, new)
            .await?;
        self.write_mission_rows(facts).await
    }

    /// The analyst table: one row per mission whose dispatch is known.
    async fn write_mission_rows(&mut self, facts: &[MissionFact]) -> Result<()> {
        let rows: Vec<_> = facts
            .iter()
            .filter_map(MissionFact::row)
            .map(|r| {
                serde_json::json!([
                    r.fact.mission_id,
                    r.fact.institution,
                    r.dispatch.program_id,
                    r.dispatch.host_facility_id,
                    r.dispatch.region_code,
                    r.dispatch.team_size,
                    json(&r.dispatch.specialties),
                    r.dispatch.start_date,
                    r.dispatch.planned_end_date,
                    r.end_date,
                ])
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO missions (mission_id, institution_id, program_id, host_facility_id,
               region_code, team_size, specialties, start_date, planned_end_date, end_date, status)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5,
                    j.value->>6, j.value->>7, j.value->>8, j.value->>9,
                    CASE WHEN j.value->>9 IS NULL THEN 'active' ELSE 'completed' END
             FROM json_each(?1) AS j WHERE true
             ON CONFLICT (institution_id, mission_id) DO UPDATE SET program_id = excluded.program_id,
               host_facility_id = excluded.host_facility_id, region_code = excluded.region_code,
               team_size = excluded.team_size, specialties = excluded.specialties,
               start_date = excluded.start_date, planned_end_date = excluded.planned_end_date,
               end_date = excluded.end_date, status = excluded.status",
        )
        .bind(json(&rows))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn write_programs(&mut self, programs: &[(Id, Option<String>)]) -> Result<()> {
        if programs.is_empty() {
            return Ok(());
        }
        // A name arriving later fills in or replaces the stored one; no name
        // leaves it as it is.
        sqlx::query(
            "INSERT INTO programs (program_id, name)
             SELECT j.value->>0, j.value->>1 FROM json_each(?1) AS j WHERE true
             ON CONFLICT (program_id) DO UPDATE SET name = excluded.name
             WHERE excluded.name IS NOT NULL AND programs.name IS NOT excluded.name",
        )
        .bind(json(programs))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Appends the batch's deltas (migration 0002): a table without an
    /// index fills pages at its end only; the compaction folds them.
    async fn write_daily(&mut self, c: &Changes<'_>) -> Result<()> {
        if c.daily.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = c
            .daily
            .iter()
            .map(|c| {
                (
                    c.day,
                    &*c.institution,
                    &*c.program_id,
                    c.mission_id.as_deref().unwrap_or(""),
                    &*c.facility_id,
                    &*c.region_code,
                    c.metric.as_str(),
                    &*c.dims,
                    c.value,
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO daily_deltas
               (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, value)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5,
                    j.value->>6, j.value->>7, j.value->>8
             FROM json_each(?1) AS j",
        )
        .bind(json(&rows))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn write_regional(&mut self, c: &Changes<'_>) -> Result<()> {
        if c.regional.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = c
            .regional
            .iter()
            .map(|c| {
                (
                    &c.region_code,
                    c.level.as_str(),
                    c.day,
                    c.metric.as_str(),
                    c.value,
                )
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO regional_deltas (region_code, region_level, day, metric, value, updated_at)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, {NOW}
             FROM json_each(?1) AS j"
        )))
        .bind(json(&rows))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn write_program_metrics(&mut self, c: &Changes<'_>) -> Result<()> {
        if c.program.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = c
            .program
            .iter()
            .map(|c| (&*c.program_id, c.day, c.metric.as_str(), c.value))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO program_deltas (program_id, day, metric, value, updated_at)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, {NOW}
             FROM json_each(?1) AS j"
        )))
        .bind(json(&rows))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Keys and payloads are bytes, which JSON cannot carry: they travel
    /// as hex and are stored as BLOBs.
    async fn write_quarantine(&mut self, rows: &[QuarantineRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.received_at,
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key.map(hex),
                    hex(r.payload),
                    r.error_code.as_str(),
                    r.error_detail,
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO quarantine
               (received_at, topic, partition, \"offset\", key, payload, error_code, error_detail)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, unhex(j.value->>4),
                    unhex(j.value->>5), j.value->>6, j.value->>7
             FROM json_each(?1) AS j WHERE true
             ON CONFLICT DO NOTHING",
        )
        .bind(json(&rows))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// Where a keyset read starts: past the last key read, or past `("", "")`.
fn after(key: &Option<Key>) -> (&str, &str) {
    key.as_ref()
        .map_or(("", ""), |(a, b)| (a.as_str(), b.as_str()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The INSERT (`new`) or UPDATE of a ledger table from one JSON parameter
/// of rows, each an array of the table's `fields` in order; the first two
/// fields are the key. Built only from the column lists, never from input.
fn json_rows_statement(table: &str, fields: &[&str], new: bool) -> String {
    let values: Vec<String> = (0..fields.len())
        .map(|i| format!("j.value->>{i}"))
        .collect();
    if new {
        format!(
            "INSERT INTO {table} ({}) SELECT {} FROM json_each(?1) AS j WHERE true
             ON CONFLICT DO NOTHING",
            fields.join(", "),
            values.join(", ")
        )
    } else {
        let set: Vec<String> = fields
            .iter()
            .zip(&values)
            .skip(2)
            .map(|(c, v)| format!("{c} = {v}"))
            .collect();
        format!(
            "UPDATE {table} AS f SET {} FROM json_each(?1) AS j
             WHERE f.{} = j.value->>0 AND f.{} = j.value->>1",
            set.join(", "),
            fields[0],
            fields[1],
        )
    }
}
