//! How a compaction splits its work, for both backends: after a drain
//! ([`Share::Alone`]) the cells of the regions below the median region
//! code fold in one lane and the rest in a second, on a second connection.
//! Every delta and every cell has one region code, so the two ranges never
//! share a row and each lane is exact on its own.

/// How much of the database a compaction may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Beside running batches: one connection, so one core of the
    /// database's (two lanes at once made batches 0.75× as fast under a
    /// backlog, docs/performance.md).
    Beside,
    /// Nothing else waits for the database (the fold after a drain, or
    /// one while batches wait for the fold past the pending budget): the
    /// regions are folded in two lanes at once, on two connections where
    /// the pool has a second (Postgres: two transactions; SQLite: the sorts
    /// of the first phases side by side, the writes in turn).
    Alone,
}

/// A compaction's second lane, for both backends: the boundary region code
/// (`None` where a one-lane fold asked for none, or the region table is
/// empty) and a second connection, one that is idle or a new one where the
/// pool has room. `None` rather than a wait for a busy connection
/// (`database.max_connections` may be 1): the first lane then folds it all.
pub(crate) async fn second_lane<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    boundary: Option<String>,
) -> Option<(String, sqlx::pool::PoolConnection<DB>)> {
    let boundary = boundary?;
    if pool.options().get_max_connections() < 2 {
        return None;
    }
    // Checked out with the pool's usual health checks; a pool at its
    // limit answers within the timeout only if a connection comes back.
    let conn = tokio::time::timeout(std::time::Duration::from_millis(500), pool.acquire())
        .await
        .ok()?
        .ok()?;
    Some((boundary, conn))
}

/// The deltas one fold takes: every one, or those of the regions below or
/// from a boundary code.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Range<'a> {
    All,
    Below(&'a str),
    From(&'a str),
}

impl<'a> Range<'a> {
    /// The first lane's part of a table: its regions below the boundary, or
    /// all of it where the table has no region code (programs).
    pub(crate) fn first_lane(regional: bool, boundary: &'a str) -> Range<'a> {
        if regional {
            Range::Below(boundary)
        } else {
            Range::All
        }
    }

    /// `region_code {operator} boundary`, or `None` for every delta.
    pub(crate) fn operator(&self) -> Option<&'static str> {
        match self {
            Range::All => None,
            Range::Below(_) => Some("<"),
            Range::From(_) => Some(">="),
        }
    }

    pub(crate) fn boundary(&self) -> Option<&str> {
        match *self {
            Range::All => None,
            Range::Below(b) | Range::From(b) => Some(b),
        }
    }
}
