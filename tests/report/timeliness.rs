//! The report's timeliness figures (`span.tl`) against SQL: per
//! institution and month, the row of `reporting_timeliness`; per program,
//! month or institution, the same definitions computed here over
//! `reporting_lags` (the distribution summed, then nearest-rank
//! percentiles and shares), for the months the asked period touches.

use std::collections::HashMap;

use scraper::Html;

use super::{Asked, Sql, select};

/// The figures of a row, in the view's column order (as the page names
/// them in `data-timeliness`).
const COLUMNS: [&str; 8] = [
    "events",
    "corrections",
    "withdrawals",
    "arrival_unknown",
    "median_days",
    "p90_days",
    "within_7_days",
    "within_30_days",
];

/// A row's scope: program, institution, month (`YYYY-MM`).
type Key = (String, Option<String>, Option<String>);
/// Shares in ten-thousandths; `None`: NULL.
type Row = Vec<Option<i64>>;

const PG_VIEW: &str = "
SELECT events, corrections, withdrawals, arrival_unknown,
       median_days::bigint, p90_days::bigint,
       (within_7_days * 10000)::bigint, (within_30_days * 10000)::bigint
FROM outreach.reporting_timeliness
WHERE program_id = $1 AND institution_id = $2 AND month = $3";

const SQLITE_VIEW: &str = "
SELECT events, corrections, withdrawals, arrival_unknown, median_days, p90_days,
       CAST(round(within_7_days * 10000) AS INTEGER), CAST(round(within_30_days * 10000) AS INTEGER)
FROM reporting_timeliness
WHERE program_id = ?1 AND institution_id = ?2 AND month = ?3";

const PG_SUMMED: &str = "
WITH l AS (
    SELECT days_to_arrival, sum(events) AS events, sum(corrections) AS corrections,
           sum(withdrawals) AS withdrawals
    FROM outreach.reporting_lags
    WHERE program_id = $1 AND ($2::text IS NULL OR institution_id = $2)
      AND ($3::date IS NULL OR month = $3)
      AND ($4::date IS NULL OR month >= date_trunc('month', $4::timestamp)::date)
      AND ($5::date IS NULL OR month <= $5)
    GROUP BY days_to_arrival),
t AS (
    SELECT l.*,
           sum(events) OVER (ORDER BY days_to_arrival NULLS LAST ROWS UNBOUNDED PRECEDING) AS reached,
           coalesce(sum(events) FILTER (WHERE days_to_arrival IS NOT NULL) OVER (), 0) AS known
    FROM l)
SELECT coalesce(sum(events), 0)::bigint, coalesce(sum(corrections), 0)::bigint,
       coalesce(sum(withdrawals), 0)::bigint,
       coalesce(sum(events) FILTER (WHERE days_to_arrival IS NULL), 0)::bigint,
       (min(days_to_arrival) FILTER (WHERE 2 * reached >= known))::bigint,
       (min(days_to_arrival) FILTER (WHERE 10 * reached >= 9 * known))::bigint,
       (round(coalesce(sum(events) FILTER (WHERE days_to_arrival <= 7), 0) / nullif(max(known), 0), 4) * 10000)::bigint,
       (round(coalesce(sum(events) FILTER (WHERE days_to_arrival <= 30), 0) / nullif(max(known), 0), 4) * 10000)::bigint
FROM t";

const SQLITE_SUMMED: &str = "
WITH l AS (
    SELECT days_to_arrival, sum(events) AS events, sum(corrections) AS corrections,
           sum(withdrawals) AS withdrawals
    FROM reporting_lags
    WHERE program_id = ?1 AND (?2 IS NULL OR institution_id = ?2)
      AND (?3 IS NULL OR month = ?3)
      AND (?4 IS NULL OR month >= substr(?4, 1, 7) || '-01')
      AND (?5 IS NULL OR month <= ?5)
    GROUP BY days_to_arrival),
t AS (
    SELECT l.*,
           sum(events) OVER (ORDER BY days_to_arrival NULLS LAST ROWS UNBOUNDED PRECEDING) AS reached,
           coalesce(sum(events) FILTER (WHERE days_to_arrival IS NOT NULL) OVER (), 0) AS known
    FROM l)
SELECT coalesce(sum(events), 0), coalesce(sum(corrections), 0), coalesce(sum(withdrawals), 0),
       coalesce(sum(events) FILTER (WHERE days_to_arrival IS NULL), 0),
       min(days_to_arrival) FILTER (WHERE 2 * reached >= known),
       min(days_to_arrival) FILTER (WHERE 10 * reached >= 9 * known),
       CAST(round(round(1.0 * coalesce(sum(events) FILTER (WHERE days_to_arrival <= 7), 0) / nullif(max(known), 0), 4) * 10000) AS INTEGER),
       CAST(round(round(1.0 * coalesce(sum(events) FILTER (WHERE days_to_arrival <= 30), 0) / nullif(max(known), 0), 4) * 10000) AS INTEGER)
FROM t";

type Tuple = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn row(t: Tuple) -> Row {
    vec![t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7]
}

impl Sql {
    /// What the figures of `key`'s row should be.
    async fn timeliness(&self, key: &Key, asked: &Asked) -> Row {
        let (program, institution, month) = key;
        let month = month
            .as_ref()
            .map(|m| chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").unwrap());
        let date = |d: &Option<String>| d.as_ref().map(|d| d.parse::<chrono::NaiveDate>().unwrap());
        let t: Tuple = match (self, institution, month) {
            // The finest grain: the view's own row.
            (Sql::Postgres(pool), Some(i), Some(m)) => sqlx::query_as(PG_VIEW)
                .bind(program)
                .bind(i)
                .bind(m)
                .fetch_one(pool)
                .await
                .unwrap(),
            (Sql::Sqlite(pool), Some(i), Some(m)) => sqlx::query_as(SQLITE_VIEW)
                .bind(program)
                .bind(i)
                .bind(m.to_string())
                .fetch_one(pool)
                .await
                .unwrap(),
            (Sql::Postgres(pool), _, _) => sqlx::query_as(PG_SUMMED)
                .bind(program)
                .bind(institution)
                .bind(month)
                .bind(date(&asked.from))
                .bind(date(&asked.to))
                .fetch_one(pool)
                .await
                .unwrap(),
            (Sql::Sqlite(pool), _, _) => sqlx::query_as(SQLITE_SUMMED)
                .bind(program)
                .bind(institution)
                .bind(month.map(|m| m.to_string()))
                .bind(&asked.from)
                .bind(&asked.to)
                .fetch_one(pool)
                .await
                .unwrap(),
        };
        row(t)
    }
}

/// A printed timeliness figure as the SQL gives it: `–` is NULL, a
/// share `87.50%` is 8750 ten-thousandths, a count `1,234` is 1234.
pub fn value(text: &str) -> Option<i64> {
    let t = text.trim();
    if t == "–" {
        return None;
    }
    let digits = t.replace([',', '.', '%'], "");
    let n: i64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("a figure: {text:?}"));
    if t.ends_with('%') {
        let (_, decimals) = t
            .trim_end_matches('%')
            .split_once('.')
            .expect("two decimals");
        assert_eq!(decimals.len(), 2, "{text:?}");
    }
    Some(n)
}

/// Checks every `span.tl` of `doc`; returns how many, and how many of
/// them are figures about days that are not NULL.
pub async fn check(doc: &Html, sql: &Sql, asked: &Asked) -> (usize, usize) {
    let mut cache: HashMap<Key, Row> = HashMap::new();
    let (mut checked, mut known) = (0, 0);
    for e in doc.select(&select("span.tl")) {
        let a = |k| e.value().attr(k).map(str::to_owned);
        let key: Key = (
            a("data-program").expect("every figure names its program"),
            a("data-institution"),
            a("data-month"),
        );
        let column = a("data-timeliness").expect("every figure names its column");
        let i = COLUMNS.iter().position(|c| *c == column).expect("a column");
        if !cache.contains_key(&key) {
            let want = sql.timeliness(&key, asked).await;
            cache.insert(key.clone(), want);
        }
        let printed = value(&e.text().collect::<String>());
        assert_eq!(
            printed, cache[&key][i],
            "{key:?} {column}: printed {printed:?}, SQL says {:?}",
            cache[&key][i]
        );
        checked += 1;
        known += usize::from(i >= 4 && printed.is_some());
    }
    (checked, known)
}

/// Gives the stored facts arrivals 0 to 49 days after their day (and
/// leaves about one in seven unknown, as facts stored before arrivals
/// were kept), so that percentiles and shares have something to tell.
pub async fn spread_arrivals(sql: &Sql) {
    match sql {
        Sql::Postgres(pool) => sqlx::query(
            "UPDATE outreach.activity_facts SET first_arrived_at =
                 CASE WHEN abs(hashtext(record_id)) % 7 = 0 THEN NULL
                      ELSE ((day + abs(hashtext(record_id || 'd')) % 50)::timestamp + interval '9 hours')
                           AT TIME ZONE 'UTC' END",
        )
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap(),
        Sql::Sqlite(pool) => sqlx::query(
            "UPDATE activity_facts SET first_arrived_at =
                 CASE WHEN rowid % 7 = 0 THEN NULL
                      ELSE strftime('%Y-%m-%dT%H:%M:%SZ', day, '+' || ((rowid * 37) % 50) || ' days', '+9 hours') END",
        )
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap(),
    }
}
