//! One batch, one transaction: claim the offsets, lock the ledger rows,
//! write every table with one set-based statement each (the roll-ups'
//! deltas appended with COPY), commit.
//!
//! Lock order is the same in every worker — offsets, activity facts, mission
//! facts — so concurrent workers wait for
//! each other but do not deadlock (Postgres breaks the rare remaining cycle,
//! and the error is retryable).

use async_trait::async_trait;
use schemas::{ActivityFact, Changes, Id, MissionFact, OffsetRange};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

use super::copy::copy_in;
use super::fold;

use crate::backend::{Key, QuarantineRow, Transaction, check_count};
use crate::rows::{
    self, ACTIVITY, ACTIVITY_FIELDS, Array, Column, Get, Getter, MISSION, MISSION_FIELDS,
    select_list,
};
use crate::{Error, Result};

type PgTransaction = sqlx::Transaction<'static, Postgres>;

pub(crate) struct Batch {
    tx: PgTransaction,
    /// The rebuild's cursors declared so far.
    cursors: Vec<&'static str>,
    /// Whether this transaction commits without waiting for its WAL
    /// (set by the first claim).
    asynchronous: bool,
}

impl Batch {
    pub(crate) fn new(tx: PgTransaction) -> Batch {
        Batch {
            tx,
            cursors: Vec::new(),
            asynchronous: false,
        }
    }

    /// The rows of a ledger table with these keys (its first two
    /// `fields`), in key order, locked until commit.
    async fn locked(&mut self, table: &str, fields: &[&str], keys: &[Key]) -> Result<Vec<PgRow>> {
        let (a, b): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).unzip();
        let (list, k0, k1) = (select_list(fields), fields[0], fields[1]);
        // Built only from the column lists, never from input.
        let sql = format!(
            "SELECT {list} FROM outreach.{table} f
             JOIN UNNEST($1::text[], $2::text[]) AS k(a, b) ON f.{k0} = k.a AND f.{k1} = k.b
             ORDER BY f.{k0}, f.{k1}
             FOR UPDATE OF f"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(a)
            .bind(b)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    /// FETCH from `cursor`, declared over `query` on first use.
    async fn fetch(
        &mut self,
        cursor: &'static str,
        query: &str,
        n: usize,
    ) -> Result<Vec<sqlx::postgres::PgRow>> {
        if !self.cursors.contains(&cursor) {
            // Built from the field lists and constants only.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DECLARE {cursor} NO SCROLL CURSOR FOR {query}"
            )))
            .execute(&mut *self.tx)
            .await?;
            self.cursors.push(cursor);
        }
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "FETCH FORWARD {n} FROM {cursor}"
        )))
        .fetch_all(&mut *self.tx)
        .await?)
    }
}

#[async_trait]
impl Transaction for Batch {
    /// Moves the partition's stored offset from `expected` to `next`.
    /// Workers claim partitions in the same order (`Batch::claim`,
    /// `sink/src/batch.rs`), so that they wait for each other but do not
    /// deadlock.
    ///
    /// A batch that claims offsets commits without waiting for its WAL to
    /// reach the disk: if the server crashes before it does, the offsets
    /// are lost with the data, and the messages are read and applied again.
    /// (Not for a rebuild, which claims nothing: its caller is told it is
    /// done.)
    async fn claim(&mut self, r: &OffsetRange) -> Result<bool> {
        if !self.asynchronous {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *self.tx)
                .await?;
            self.asynchronous = true;
        }
        let q = match r.expected {
            Some(expected) => sqlx::query(
                "UPDATE outreach.consumer_offsets SET next_offset = $3, updated_at = now()
                 WHERE topic = $1 AND partition = $2 AND next_offset = $4",
            )
            .bind(&*r.topic)
            .bind(r.partition)
            .bind(r.next)
            .bind(expected),
            None => sqlx::query(
                "INSERT INTO outreach.consumer_offsets (topic, partition, next_offset)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&*r.topic)
            .bind(r.partition)
            .bind(r.next),
        };
        Ok(q.execute(&mut *self.tx).await?.rows_affected() == 1)
    }

    /// The ledger rows of these keys, in key order, locked until commit.
    async fn load_activities(&mut self, keys: &[Key]) -> Result<Vec<ActivityFact<'static>>> {
        let rows = self
            .locked("activity_facts", &ACTIVITY_FIELDS, keys)
            .await?;
        rows.iter().map(rows::activity).collect()
    }

    async fn load_missions(&mut self, keys: &[Key]) -> Result<Vec<MissionFact>> {
        let rows = self.locked("mission_facts", &MISSION_FIELDS, keys).await?;
        rows.iter().map(rows::mission).collect()
    }

    /// For a rebuild: every batch's claim (an update of its offsets) waits
    /// until this transaction ends, and a batch in flight is waited for.
    /// Readers of any table go on.
    async fn lock_out_writers(&mut self) -> Result<()> {
        sqlx::query("LOCK TABLE outreach.consumer_offsets IN EXCLUSIVE MODE")
            .execute(&mut *self.tx)
            .await?;
        // And compactions: the rebuild writes the cells itself.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(fold::LOCK)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// (activity facts, mission facts) in the ledger.
    async fn ledger_size(&mut self) -> Result<(u64, u64)> {
        let (a, m): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outreach.activity_facts),
                    (SELECT count(*) FROM outreach.mission_facts)",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((a as u64, m as u64))
    }

    /// The next `n` activity facts, through a cursor ordered by region
    /// and day: each chunk then covers few regions and days, so its
    /// roll-up collapses well and the rebuild appends few deltas.
    async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>> {
        let list = select_list(&ACTIVITY_FIELDS);
        let rows = self
            .fetch(
                "rebuild_activities",
                &format!("SELECT {list} FROM outreach.activity_facts f ORDER BY region_code, day"),
                n,
            )
            .await?;
        rows.iter().map(rows::activity).collect()
    }

    /// The next `n` mission facts, through a cursor.
    async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>> {
        let list = select_list(&MISSION_FIELDS);
        let rows = self
            .fetch(
                "rebuild_missions",
                &format!("SELECT {list} FROM outreach.mission_facts f ORDER BY region_code"),
                n,
            )
            .await?;
        rows.iter().map(rows::mission).collect()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn clear(&mut self, table: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM outreach.{table}")))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn write_activities(&mut self, facts: &[ActivityFact<'_>], new: bool) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        if !new {
            let done = ledger_rows("activity_facts", &ACTIVITY, facts, false)
                .execute(&mut *self.tx)
                .await?;
            return check_count(done.rows_affected(), facts.len());
        }
        // The bulk of a batch's ledger rows: COPY. A fact another worker
        // inserted since `load` breaks the primary key: the batch is
        // retried and then sees it.
        let copy = format!(
            "COPY outreach.activity_facts ({}) FROM STDIN",
            ACTIVITY_FIELDS.join(", ")
        );
        copy_in(&mut self.tx, &copy, facts, |r, f| {
            for c in &ACTIVITY {
                r.value(c.get.value(f));
            }
        })
        .await
        .map_err(|e| match e {
            Error::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
                Error::Conflict(1)
            }
            other => other,
        })
        .and_then(|done| check_count(done, facts.len()))
    }

    async fn write_missions(&mut self, facts: &[MissionFact], new: bool) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        let done = ledger_rows("mission_facts", &MISSION, facts, new)
            .execute(&mut *self.tx)
            .await?;
        check_count(done.rows_affected(), facts.len())?;
        self.write_mission_rows(facts).await
    }

    /// The analyst table: one row per mission whose dispatch is known.
    async fn write_mission_rows(&mut self, facts: &[MissionFact]) -> Result<()> {
        let rows: Vec<_> = facts.iter().filter_map(MissionFact::row).collect();
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outreach.missions (mission_id, institution_id, program_id, host_facility_id,
               region_code, team_size, specialties, start_date, planned_end_date, end_date, status)
             SELECT m, i, p, h, r, t, ARRAY(SELECT jsonb_array_elements_text(s::jsonb)), sd, pe, ed,
                    CASE WHEN ed IS NULL THEN 'active' ELSE 'completed' END
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
                         $8::date[], $9::date[], $10::date[]) AS u(m, i, p, h, r, t, s, sd, pe, ed)
             ORDER BY i, m
             ON CONFLICT (institution_id, mission_id) DO UPDATE SET program_id = excluded.program_id,
               host_facility_id = excluded.host_facility_id, region_code = excluded.region_code,
               team_size = excluded.team_size, specialties = excluded.specialties,
               start_date = excluded.start_date, planned_end_date = excluded.planned_end_date,
               end_date = excluded.end_date, status = excluded.status",
        )
        .bind(rows.iter().map(|r| r.fact.mission_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.fact.institution.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.dispatch.program_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.dispatch.host_facility_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.dispatch.region_code.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.dispatch.team_size).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| serde_json::to_string(&r.dispatch.specialties).expect("strings serialise"))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.dispatch.start_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.dispatch.planned_end_date).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.end_date).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn write_programs(&mut self, programs: &[(Id, Option<String>)]) -> Result<()> {
        if programs.is_empty() {
            return Ok(());
        }
        // DO NOTHING takes no row lock, so busy programs do not serialise workers.
        sqlx::query(
            "INSERT INTO outreach.programs (program_id, name)
             SELECT * FROM UNNEST($1::text[], $2::text[]) ORDER BY 1 ON CONFLICT DO NOTHING",
        )
        .bind(programs.iter().map(|p| p.0.as_str()).collect::<Vec<_>>())
        .bind(programs.iter().map(|p| p.1.as_deref()).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        let named: Vec<_> = programs
            .iter()
            .filter_map(|(id, n)| Some((id.as_str(), n.as_deref()?)))
            .collect();
        if !named.is_empty() {
            sqlx::query(
                "UPDATE outreach.programs p SET name = u.name
                 FROM UNNEST($1::text[], $2::text[]) AS u(id, name)
                 WHERE p.program_id = u.id AND p.name IS DISTINCT FROM u.name",
            )
            .bind(named.iter().map(|n| n.0).collect::<Vec<_>>())
            .bind(named.iter().map(|n| n.1).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// The three roll-ups: each batch appends its signed deltas with COPY
    /// (no upsert, no row lock: workers never wait for each other here);
    /// compaction folds them into the cells later (`fold/`).
    async fn write_daily(&mut self, c: &Changes<'_>) -> Result<()> {
        copy_in(
            &mut self.tx,
            "COPY outreach.daily_deltas (day, institution_id, program_id, mission_id, facility_id,
               region_code, metric, dims, value) FROM STDIN",
            &c.daily,
            |r, c| {
                r.date(c.day)
                    .text(&c.institution)
                    .text(&c.program_id)
                    .opt_text(c.mission_id.as_deref())
                    .text(&c.facility_id)
                    .text(&c.region_code)
                    .text(c.metric.as_str())
                    .text(&c.dims)
                    .int(c.value);
            },
        )
        .await?;
        Ok(())
    }

    /// The transform gives days only: the views and the fold spread them
    /// to the other periods (migration 0004), which are the sums of their
    /// days.
    async fn write_regional(&mut self, c: &Changes<'_>) -> Result<()> {
        copy_in(
            &mut self.tx,
            "COPY outreach.regional_deltas (region_code, region_level, day, metric, value)
             FROM STDIN",
            &c.regional,
            |r, c| {
                r.text(&c.region_code)
                    .text(c.level.as_str())
                    .date(c.day)
                    .text(c.metric.as_str())
                    .int(c.value);
            },
        )
        .await?;
        Ok(())
    }

    async fn write_program_metrics(&mut self, c: &Changes<'_>) -> Result<()> {
        copy_in(
            &mut self.tx,
            "COPY outreach.program_deltas (program_id, day, metric, value) FROM STDIN",
            &c.program,
            |r, c| {
                r.text(&c.program_id)
                    .date(c.day)
                    .text(c.metric.as_str())
                    .int(c.value);
            },
        )
        .await?;
        Ok(())
    }

    /// A rebuild wrote full values as deltas into emptied tables: fold them
    /// now, so the rebuilt tables start compact.
    async fn settle(&mut self) -> Result<()> {
        fold::fold(&mut self.tx).await?;
        Ok(())
    }

    async fn write_quarantine(&mut self, rows: &[QuarantineRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outreach.quarantine
               (received_at, topic, partition, \"offset\", key, payload, error_code, error_detail)
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int[], $4::bigint[], $5::bytea[],
                                  $6::bytea[], $7::text[], $8::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.topic).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.partition).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.offset).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.key).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.payload).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.error_code.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.error_detail).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// The INSERT (`new`; a row another worker inserted since `load` is left
/// alone, and the count check sees it) or UPDATE of ledger rows, one array
/// parameter per column of `columns`, whose first two are the key. Built
/// only from the column list, never from input.
fn ledger_rows<'q, T, A, B, C, D>(
    table: &str,
    columns: &[Column<Get<A, B, C, D>>],
    facts: &'q [T],
    new: bool,
) -> Query<'q, Postgres, PgArguments>
where
    Get<A, B, C, D>: Getter<'q, T>,
{
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let unnest: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.get.postgres_array()))
        .collect();
    let (unnest, cols) = (unnest.join(", "), names.join(", "));
    let sql = if new {
        format!(
            "INSERT INTO outreach.{table} ({cols}) SELECT * FROM UNNEST({unnest})
             ORDER BY 1, 2 ON CONFLICT DO NOTHING"
        )
    } else {
        let set: Vec<String> = names[2..].iter().map(|c| format!("{c} = u.{c}")).collect();
        format!(
            "UPDATE outreach.{table} f SET {} FROM UNNEST({unnest}) AS u({cols})
             WHERE f.{k0} = u.{k0} AND f.{k1} = u.{k1}",
            set.join(", "),
            k0 = names[0],
            k1 = names[1],
        )
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in columns {
        query = match c.get.array(facts) {
            Array::Text(v) => query.bind(v),
            Array::Int(v) => query.bind(v),
            Array::Date(v) => query.bind(v),
            Array::Time(v) => query.bind(v),
        };
    }
    query
}
