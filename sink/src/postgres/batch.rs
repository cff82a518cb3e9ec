//! One batch, one transaction: claim the offsets, lock the ledger rows,
//! write every table with one set-based statement each (the roll-ups'
//! deltas appended with COPY), commit.
//!
//! Lock order is the same in every worker — offsets, activity facts, mission
//! facts — so concurrent workers wait for
//! each other but do not deadlock (Postgres breaks the rare remaining cycle,
//! and the error is retryable).

use schemas::{ActivityFact, Changes, MissionFact, Period};
use sqlx::{Postgres, Transaction};

use super::compact;
use super::copy::copy_in;
use schemas::OffsetRange;

use crate::batch::{Key, QuarantineRow, Statements, check_count};
use crate::rows::{self, ACTIVITY_FIELDS, MISSION_FIELDS, c, d, select_list};
use crate::{Error, Result};

pub(crate) struct Batch {
    tx: Transaction<'static, Postgres>,
    /// The rebuild's cursors declared so far.
    cursors: Vec<&'static str>,
}

impl Batch {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Batch {
        Batch {
            tx,
            cursors: Vec::new(),
        }
    }

    /// Moves each partition's stored offset from `expected` to `next`, or
    /// fails with [`Error::Fenced`] if another worker moved it first.
    /// `ranges` are sorted, so that workers lock offsets in the same order.
    ///
    /// A batch that claims offsets commits without waiting for its WAL to
    /// reach the disk: if the server crashes before it does, the offsets
    /// are lost with the data, and the messages are read and applied again.
    /// (Not for a rebuild, which claims nothing: its caller is told it is
    /// done.)
    pub async fn claim(&mut self, ranges: &[&OffsetRange]) -> Result<()> {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *self.tx)
            .await?;
        for r in ranges {
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
            if q.execute(&mut *self.tx).await?.rows_affected() != 1 {
                return Err(Error::Fenced {
                    topic: r.topic.to_string(),
                    partition: r.partition,
                    expected: r.expected,
                });
            }
        }
        Ok(())
    }

    /// The ledger rows of these keys (sorted), locked until commit.
    pub async fn load(
        &mut self,
        activity_keys: &[Key],
        mission_keys: &[Key],
    ) -> Result<(Vec<ActivityFact<'static>>, Vec<MissionFact>)> {
        let (activity, mission) = (select_list(&ACTIVITY_FIELDS), select_list(&MISSION_FIELDS));
        let (inst, rec): (Vec<&str>, Vec<&str>) = activity_keys
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .unzip();
        let rows = sqlx::query(
            sqlx::AssertSqlSafe(format!(
                "SELECT {activity}
                 FROM outreach.activity_facts f
                 JOIN UNNEST($1::text[], $2::text[]) AS k(i, r) ON f.institution_id = k.i AND f.record_id = k.r
                 ORDER BY f.institution_id, f.record_id
                 FOR UPDATE OF f"
            )),
        )
        .bind(inst)
        .bind(rec)
        .fetch_all(&mut *self.tx)
        .await?;
        let activities = rows.iter().map(rows::activity).collect::<Result<_>>()?;

        let (inst, mis): (Vec<&str>, Vec<&str>) = mission_keys
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .unzip();
        let rows = sqlx::query(
            sqlx::AssertSqlSafe(format!(
                "SELECT {mission}
                 FROM outreach.mission_facts f
                 JOIN UNNEST($1::text[], $2::text[]) AS k(i, m) ON f.institution_id = k.i AND f.mission_id = k.m
                 ORDER BY f.institution_id, f.mission_id
                 FOR UPDATE OF f"
            )),
        )
        .bind(inst)
        .bind(mis)
        .fetch_all(&mut *self.tx)
        .await?;
        let missions = rows.iter().map(rows::mission).collect::<Result<_>>()?;
        Ok((activities, missions))
    }

    /// For a rebuild: every batch's claim (an update of its offsets) waits
    /// until this transaction ends, and a batch in flight is waited for.
    /// Readers of any table go on.
    pub async fn lock_out_writers(&mut self) -> Result<()> {
        sqlx::query("LOCK TABLE outreach.consumer_offsets IN EXCLUSIVE MODE")
            .execute(&mut *self.tx)
            .await?;
        // And compactions: the rebuild writes the cells itself.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(compact::LOCK)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The next `n` activity facts, through a cursor ordered by region
    /// and day: each chunk then covers few regions and days, so its
    /// roll-up collapses well and the rebuild appends few deltas.
    pub async fn next_activities(&mut self, n: usize) -> Result<Vec<ActivityFact<'static>>> {
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
    pub async fn next_missions(&mut self, n: usize) -> Result<Vec<MissionFact>> {
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

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Statements for Batch {
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
        if new {
            // The bulk of a batch's ledger rows: COPY. A fact another worker
            // inserted since `load` breaks the primary key: the batch is
            // retried and then sees it.
            let copy = format!(
                "COPY outreach.activity_facts ({}) FROM STDIN",
                ACTIVITY_FIELDS.join(", ")
            );
            return copy_in(
                &mut self.tx,
                &copy,
                facts,
                // In ACTIVITY_FIELDS' order.
                |r, f| {
                    r.text(&f.institution)
                        .text(&f.record_id)
                        .int(f.revision.into())
                        .text(&f.event_id)
                        .text(&f.program_id)
                        .opt_text(f.mission_id.as_deref())
                        .text(&f.facility_id)
                        .text(&f.region_code)
                        .date(f.day)
                        .text(f.metric.as_str())
                        .text(&f.dims)
                        .int(f.value);
                },
            )
            .await
            .map_err(|e| match e {
                Error::Database(sqlx::Error::Database(db))
                    if db.code().as_deref() == Some("23505") =>
                {
                    Error::Conflict(1)
                }
                other => other,
            })
            .and_then(|done| check_count(done, facts.len()));
        }
        let col = |f: for<'f> fn(&'f ActivityFact<'_>) -> &'f str| {
            facts.iter().map(f).collect::<Vec<&str>>()
        };
        let sql = "UPDATE outreach.activity_facts f SET revision = u.revision, event_id = u.event_id,
               program_id = u.program_id, mission_id = u.mission_id, facility_id = u.facility_id,
               region_code = u.region_code, day = u.day, metric = u.metric, dims = u.dims, value = u.value
             FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::date[], $10::text[], $11::text[], $12::bigint[])
               AS u(institution_id, record_id, revision, event_id, program_id, mission_id, facility_id,
                    region_code, day, metric, dims, value)
             WHERE f.institution_id = u.institution_id AND f.record_id = u.record_id";
        let done = sqlx::query(sql)
            .bind(col(|f| &f.institution))
            .bind(col(|f| &f.record_id))
            .bind(facts.iter().map(|f| f.revision).collect::<Vec<_>>())
            .bind(col(|f| &f.event_id))
            .bind(col(|f| &f.program_id))
            .bind(
                facts
                    .iter()
                    .map(|f| f.mission_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(col(|f| &f.facility_id))
            .bind(col(|f| &f.region_code))
            .bind(facts.iter().map(|f| f.day).collect::<Vec<_>>())
            .bind(col(|f| f.metric.as_str()))
            .bind(col(|f| &f.dims))
            .bind(facts.iter().map(|f| f.value).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        check_count(done.rows_affected(), facts.len())
    }

    async fn write_missions(&mut self, facts: &[MissionFact], new: bool) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        let cols = MISSION_FIELDS.join(", ");
        let unnest = "UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], $12::date[],
                             $13::date[], $14::timestamptz[], $15::text[], $16::date[])";
        let sql = if new {
            format!(
                "INSERT INTO outreach.mission_facts ({cols}) SELECT * FROM {unnest} ORDER BY 1, 2 ON CONFLICT DO NOTHING"
            )
        } else {
            let set = MISSION_FIELDS
                .iter()
                .skip(2)
                .map(|c| format!("{c} = u.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "UPDATE outreach.mission_facts f SET {set} FROM {unnest} AS u({cols})
                 WHERE f.institution_id = u.institution_id AND f.mission_id = u.mission_id"
            )
        };
        let specialties: Vec<Option<String>> = facts
            .iter()
            .map(|f| {
                d(f).map(|d| serde_json::to_string(&d.specialties).expect("strings serialise"))
            })
            .collect();
        // Built only from MISSION_FIELDS and the constant UNNEST above, never from input.
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(
                facts
                    .iter()
                    .map(|f| f.institution.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| f.mission_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.time))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.event_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.program_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).and_then(|d| d.program_name.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.host_facility_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).and_then(|d| d.host_facility_name.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.region_code.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.team_size))
                    .collect::<Vec<_>>(),
            )
            .bind(specialties)
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).map(|d| d.start_date))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| d(f).and_then(|d| d.planned_end_date))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| c(f).map(|c| c.time))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| c(f).map(|c| c.event_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                facts
                    .iter()
                    .map(|f| c(f).map(|c| c.end_date))
                    .collect::<Vec<_>>(),
            )
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

    async fn write_programs(&mut self, programs: &[(String, Option<String>)]) -> Result<()> {
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
    /// compaction folds them into the cells later (`compact.rs`).
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

    /// Only the day's regional and program deltas are written: the views
    /// and the compaction spread them to the other periods (migration 0004),
    /// which are the sums of their days.
    async fn write_regional(&mut self, c: &Changes<'_>) -> Result<()> {
        copy_in(
            &mut self.tx,
            "COPY outreach.regional_deltas (region_code, region_level, day, metric, value)
             FROM STDIN",
            &days(&c.regional, |c| c.period),
            |r, c| {
                r.text(&c.region_code)
                    .text(c.level.as_str())
                    .date(c.period_start)
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
            &days(&c.program, |c| c.period),
            |r, c| {
                r.text(&c.program_id)
                    .date(c.period_start)
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
        compact::fold(&mut self.tx).await?;
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
        .bind(rows.iter().map(|r| r.error_code).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.error_detail).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// The day-period cells of a roll-up (collected: a filtering iterator held
/// across the COPY's awaits would not be `Send`).
fn days<T>(cells: &[T], period: impl Fn(&T) -> Period) -> Vec<&T> {
    cells.iter().filter(|c| period(c) == Period::Day).collect()
}
