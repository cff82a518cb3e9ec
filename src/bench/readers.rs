//! What analysts pay: the dashboard's queries and ad-hoc whole-table
//! aggregates, timed against the analyst views (`outreach`) and, where the
//! batch SQL alternative left them, against plain tables holding the same
//! rows with the rebuild's keys and indexes (`outreach_alt`). Both schemas
//! must give the same number of rows, or the comparison is void.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Timed runs per query and schema, after one untimed warm-up run.
const RUNS: usize = 15;

/// The queries, `{s}` for the schema; `{county}`, `{from}` and `{to}` are
/// filled from the data (see [`Params`]).
const QUERIES: [(&str, &str); 6] = [
    (
        "dashboard: program totals by month",
        "SELECT program_id, period_start, metric, sum(value) FROM {s}.program_metrics
         WHERE period_type = 'month' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
    (
        "dashboard: by province over a range (day grain)",
        "SELECT region_code, metric, sum(value) FROM {s}.regional_metrics
         WHERE region_level = 'province' AND period_type = 'day'
           AND period_start BETWEEN '{from}' AND '{to}'
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "one county by month",
        "SELECT period_start, metric, value FROM {s}.regional_metrics
         WHERE region_code = '{county}' AND period_type = 'month' ORDER BY 1, 2",
    ),
    (
        "ad hoc: min(region_code) of the counties",
        "SELECT min(region_code) FROM {s}.regional_metrics WHERE region_level = 'county'",
    ),
    (
        "ad hoc: count and sum of every province x month",
        "SELECT count(*), sum(value) FROM {s}.regional_metrics
         WHERE region_level = 'province' AND period_type = 'month'",
    ),
    (
        "ad hoc: count and sum of daily_metrics",
        "SELECT count(*), sum(value) FROM {s}.daily_metrics",
    ),
];

/// The literals the queries name, read from the analyst views once (so
/// they exist whether or not the fold has run).
pub(super) struct Params {
    county: String,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
}

impl Params {
    pub(super) async fn read(sink: &sink::Sink) -> anyhow::Result<Params> {
        let county = sink
            .read_text(
                "SELECT min(region_code) FROM outreach.regional_metrics
                 WHERE region_level = 'county' AND period_type = 'year'",
            )
            .await?
            .context("no county cell to read")?;
        let to: chrono::NaiveDate = sink
            .read_text(
                "SELECT max(period_start)::text FROM outreach.regional_metrics
                 WHERE region_level = 'country' AND period_type = 'day'",
            )
            .await?
            .context("no day cell to read")?
            .parse()?;
        Ok(Params {
            county,
            from: to - chrono::Days::new(30),
            to,
        })
    }

    fn sql(&self, template: &str, schema: &str) -> String {
        template
            .replace("{s}", schema)
            .replace("{county}", &self.county)
            .replace("{from}", &self.from.to_string())
            .replace("{to}", &self.to.to_string())
    }
}

/// One query's timings on one schema.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Timed {
    rows: u64,
    p50: Duration,
    p99: Duration,
}

impl Timed {
    fn json(&self) -> Value {
        json!({
            "rows": self.rows,
            "p50_ms": ms(self.p50),
            "p99_ms": ms(self.p99),
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The nearest-rank quantile of `samples` (sorted here).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64) * q).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1]
}

async fn time(sink: &sink::Sink, sql: &str) -> anyhow::Result<Timed> {
    let (_, rows) = sink.timed_read(sql).await?;
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (took, n) = sink.timed_read(sql).await?;
        if n != rows {
            bail!("{sql} gave {rows} rows, then {n}");
        }
        samples.push(took);
    }
    Ok(Timed {
        rows,
        p50: quantile(&mut samples, 0.50),
        p99: quantile(&mut samples, 0.99),
    })
}

/// Every query on the views, and where `plain` names a schema of plain
/// tables, on it too, with the ratio of the medians.
pub(super) async fn measure(
    sink: &sink::Sink,
    params: &Params,
    plain: Option<&str>,
) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for (name, template) in QUERIES {
        let views = time(sink, &params.sql(template, "outreach")).await?;
        let mut entry = json!({ "query": name, "views": views.json() });
        if let Some(schema) = plain {
            let tables = time(sink, &params.sql(template, schema)).await?;
            if tables.rows != views.rows {
                bail!(
                    "{name}: the views gave {} rows, the plain tables {}",
                    views.rows,
                    tables.rows
                );
            }
            entry["plain"] = tables.json();
            entry["p50_ratio"] = json!(
                (views.p50.as_secs_f64() / tables.p50.as_secs_f64().max(1e-6) * 100.0).round()
                    / 100.0
            );
        }
        out.push(entry);
    }
    Ok(json!(out))
}

/// The views' queries in a loop until `stop`, for `--readers` during a
/// `--rate` run: every sample of every query, summarised at the end.
pub(super) async fn during(
    sink: sink::Sink,
    params: Params,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Value> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
    let mut rows = vec![0u64; QUERIES.len()];
    while !*stop.borrow() {
        for (i, (_, template)) in QUERIES.iter().enumerate() {
            let (took, n) = sink.timed_read(&params.sql(template, "outreach")).await?;
            samples[i].push(took);
            rows[i] = n;
        }
    }
    Ok(json!(
        QUERIES
            .iter()
            .zip(samples.iter_mut().zip(rows))
            .map(|((name, _), (s, rows))| {
                if s.is_empty() {
                    return json!({ "query": name, "samples": 0 });
                }
                json!({
                    "query": name, "samples": s.len(), "rows": rows,
                    "views": { "p50_ms": ms(quantile(s, 0.5)), "p99_ms": ms(quantile(s, 0.99)) },
                })
            })
            .collect::<Vec<_>>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s: Vec<Duration> = (1..=15).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut s, 0.5), Duration::from_millis(8));
        assert_eq!(quantile(&mut s, 0.99), Duration::from_millis(15));
        let mut one = vec![Duration::from_millis(3)];
        assert_eq!(quantile(&mut one, 0.5), Duration::from_millis(3));
    }

    #[test]
    fn every_query_names_its_schema_and_fills_every_literal() {
        let p = Params {
            county: "110101".into(),
            from: "2026-01-01".parse().unwrap(),
            to: "2026-01-31".parse().unwrap(),
        };
        for (_, t) in QUERIES {
            let sql = p.sql(t, "outreach_alt");
            assert!(sql.contains("FROM outreach_alt."), "{sql}");
            assert!(!sql.contains('{'), "{sql}");
        }
    }
}
