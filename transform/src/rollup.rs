//! The polars roll-up: signed cells in, summed deltas out for the finest
//! grain, every ancestor region × period, and every program × period.
//!
//! polars only ever sees integers: each batch's strings are interned to
//! ids, regions are indexes into the region table with a precomputed
//! ancestor closure, metrics and periods are small numbers, and days are
//! days since 1970 with each period's first day looked up from a calendar
//! of the batch's days (computed by [`Period::start`], the reference). Group-bys on
//! integer keys are several times faster than on strings, and no string is
//! built per output cell until the very end.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;

use schemas::{Cell, Level, Metric, Period, ProgramCell, RegionalCell, Regions};

use crate::{Contribution, Result};

/// Holds the region index and closure (each region → itself and every
/// ancestor), built once from the region table.
pub struct Rollup {
    codes: Vec<String>,
    levels: Vec<Level>,
    index: HashMap<String, u32>,
    /// `region` → `ancestor`, both indexes into `codes`.
    closure: DataFrame,
}

/// The grain of `daily_metrics`.
const KEYS: [&str; 8] = [
    "day",
    "institution",
    "program_id",
    "mission_id",
    "facility_id",
    "region",
    "metric",
    "dims",
];

/// A cell without a mission.
const NO_MISSION: u32 = u32::MAX;

/// Strings of one batch ↔ dense ids.
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
    strings: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        *self.ids.entry(s).or_insert_with(|| {
            self.strings.push(s);
            (self.strings.len() - 1) as u32
        })
    }
}

impl Rollup {
    pub fn new(regions: &Regions) -> Result<Rollup> {
        let mut codes: Vec<String> = regions.iter().map(|r| r.code.clone()).collect();
        codes.sort();
        let index: HashMap<String, u32> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u32))
            .collect();
        let levels = codes
            .iter()
            .map(|c| regions.get(c).expect("listed above").level)
            .collect();
        let (mut region, mut ancestor) = (Vec::new(), Vec::new());
        for (i, code) in codes.iter().enumerate() {
            for a in regions.lineage(code) {
                region.push(i as u32);
                ancestor.push(index[&a.code]);
            }
        }
        let closure = DataFrame::new(
            region.len(),
            vec![
                Column::new("region".into(), region),
                Column::new("ancestor".into(), ancestor),
            ],
        )?;
        Ok(Rollup {
            codes,
            levels,
            index,
            closure,
        })
    }

    /// Sums `cells` per daily cell (dropping the ones that cancel out), then
    /// rolls the result up. A region missing from the region table stays in
    /// the daily cells and rolls up nowhere.
    pub fn roll_up(
        &self,
        cells: &[Contribution<'_>],
    ) -> Result<(Vec<Cell>, Vec<RegionalCell>, Vec<ProgramCell>)> {
        if cells.is_empty() {
            return Ok(Default::default());
        }
        let mut names = Interner::default();
        // Regions outside the table get ids past its end.
        let mut unknown = Interner::default();
        let n = cells.len();
        let (mut day, mut inst, mut prog, mut mission, mut fac, mut region, mut metric, mut dims) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut value = Vec::with_capacity(n);
        for c in cells {
            day.push(days(c.day));
            inst.push(names.id(c.institution));
            prog.push(names.id(c.program_id));
            mission.push(c.mission_id.map_or(NO_MISSION, |m| names.id(m)));
            fac.push(names.id(c.facility_id));
            region.push(match self.index.get(c.region_code) {
                Some(i) => *i,
                None => self.codes.len() as u32 + unknown.id(c.region_code),
            });
            metric.push(c.metric as u32);
            dims.push(names.id(c.dims));
            value.push(c.value);
        }
        let frame = DataFrame::new(
            n,
            vec![
                Column::new("day".into(), day),
                Column::new("institution".into(), inst),
                Column::new("program_id".into(), prog),
                Column::new("mission_id".into(), mission),
                Column::new("facility_id".into(), fac),
                Column::new("region".into(), region),
                Column::new("metric".into(), metric),
                Column::new("dims".into(), dims),
                Column::new("value".into(), value),
            ],
        )?;
        let daily = frame
            .lazy()
            .group_by(KEYS.map(col))
            .agg([col("value").sum()])
            .filter(col("value").neq(lit(0)))
            .collect()?;

        let calendar = calendar(&daily)?;
        // Each region's day totals, then every ancestor's, then per period.
        let regional = per_period(
            sum_by(
                sum_by(daily.clone().lazy(), &["region", "day", "metric"])
                    .join(
                        self.closure.clone().lazy(),
                        [col("region")],
                        [col("region")],
                        JoinArgs::new(JoinType::Inner),
                    )
                    .select([
                        col("ancestor").alias("key"),
                        col("day"),
                        col("metric"),
                        col("value"),
                    ]),
                &["key", "day", "metric"],
            ),
            calendar.clone(),
        )?
        .collect()?;
        let program = per_period(
            sum_by(daily.clone().lazy(), &["program_id", "day", "metric"]).select([
                col("program_id").alias("key"),
                col("day"),
                col("metric"),
                col("value"),
            ]),
            calendar,
        )?
        .collect()?;

        Ok((
            self.daily_cells(&daily, &names, &unknown.strings)?,
            self.regional_cells(&regional)?,
            program_cells(&program, &names)?,
        ))
    }

    fn daily_cells(
        &self,
        df: &DataFrame,
        names: &Interner<'_>,
        unknown_regions: &[&str],
    ) -> Result<Vec<Cell>> {
        let region_code = |id: u32| match self.codes.get(id as usize) {
            Some(code) => code.clone(),
            None => unknown_regions[id as usize - self.codes.len()].to_owned(),
        };
        let name = |id: Option<u32>| names.strings[id.unwrap_or_default() as usize].to_owned();
        let (mut day, mut inst, mut prog, mut mission, mut fac, mut region, mut metric, mut dims) = (
            ints(df, "day")?,
            u32s(df, "institution")?,
            u32s(df, "program_id")?,
            u32s(df, "mission_id")?,
            u32s(df, "facility_id")?,
            u32s(df, "region")?,
            u32s(df, "metric")?,
            u32s(df, "dims")?,
        );
        let values = values(df)?;
        let mut out = Vec::with_capacity(df.height());
        for value in values {
            out.push(Cell {
                day: date(day.next().flatten()),
                institution: name(inst.next().flatten()),
                program_id: name(prog.next().flatten()),
                mission_id: mission
                    .next()
                    .flatten()
                    .filter(|m| *m != NO_MISSION)
                    .map(|m| name(Some(m))),
                facility_id: name(fac.next().flatten()),
                region_code: region_code(region.next().flatten().unwrap_or_default()),
                metric: Metric::ALL[metric.next().flatten().unwrap_or_default() as usize],
                dims: name(dims.next().flatten()),
                value,
            });
        }
        Ok(out)
    }

    fn regional_cells(&self, df: &DataFrame) -> Result<Vec<RegionalCell>> {
        let (mut key, mut period, mut start, mut metric) = (
            u32s(df, "key")?,
            u32s(df, "period")?,
            ints(df, "start")?,
            u32s(df, "metric")?,
        );
        Ok(values(df)?
            .into_iter()
            .map(|value| {
                let region = key.next().flatten().unwrap_or_default() as usize;
                RegionalCell {
                    region_code: self.codes[region].clone(),
                    level: self.levels[region],
                    period: Period::ALL[period.next().flatten().unwrap_or_default() as usize],
                    period_start: date(start.next().flatten()),
                    metric: Metric::ALL[metric.next().flatten().unwrap_or_default() as usize],
                    value,
                }
            })
            .collect())
    }
}

/// `lf` summed per `by`.
fn sum_by(lf: LazyFrame, by: &[&str]) -> LazyFrame {
    lf.group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .agg([col("value").sum()])
}

/// For each day of `daily`, the first day of each period holding it
/// (columns `p0`…`p4`, in [`Period::ALL`] order), by the reference
/// [`Period::start`]: a batch has few distinct days, so this is cheap.
fn calendar(daily: &DataFrame) -> Result<DataFrame> {
    let distinct: BTreeSet<i32> = daily.column("day")?.i32()?.iter().flatten().collect();
    let day: Vec<i32> = distinct.into_iter().collect();
    let mut columns = vec![Column::new("day".into(), day.clone())];
    for (i, p) in Period::ALL.into_iter().enumerate() {
        let starts: Vec<i32> = day.iter().map(|d| days(p.start(date(Some(*d))))).collect();
        columns.push(Column::new(format!("p{i}").into(), starts));
    }
    Ok(DataFrame::new(day.len(), columns)?)
}

/// `lf` (key, day, metric, value) summed per key, period and the period's
/// first day, cells that cancel out dropped.
fn per_period(lf: LazyFrame, calendar: DataFrame) -> Result<LazyFrame> {
    let dated = lf.join(
        calendar.lazy(),
        [col("day")],
        [col("day")],
        JoinArgs::new(JoinType::Inner),
    );
    let frames: Vec<LazyFrame> = (0..Period::ALL.len())
        .map(|i| {
            dated.clone().select([
                col("key"),
                lit(i as u32).cast(DataType::UInt32).alias("period"),
                col(format!("p{i}")).alias("start"),
                col("metric"),
                col("value"),
            ])
        })
        .collect();
    Ok(concat(frames, UnionArgs::default())?
        .group_by([col("key"), col("period"), col("start"), col("metric")])
        .agg([col("value").sum()])
        .filter(col("value").neq(lit(0))))
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

fn days(d: NaiveDate) -> i32 {
    (d - EPOCH).num_days() as i32
}

fn date(d: Option<i32>) -> NaiveDate {
    EPOCH + chrono::TimeDelta::days(d.unwrap_or_default() as i64)
}

fn u32s<'a>(df: &'a DataFrame, name: &str) -> Result<impl Iterator<Item = Option<u32>> + 'a> {
    Ok(df.column(name)?.u32()?.iter())
}

fn ints<'a>(df: &'a DataFrame, name: &str) -> Result<impl Iterator<Item = Option<i32>> + 'a> {
    Ok(df.column(name)?.i32()?.iter())
}

fn values(df: &DataFrame) -> Result<Vec<i64>> {
    Ok(df
        .column("value")?
        .i64()?
        .iter()
        .map(Option::unwrap_or_default)
        .collect())
}

fn program_cells(df: &DataFrame, names: &Interner<'_>) -> Result<Vec<ProgramCell>> {
    let (mut key, mut period, mut start, mut metric) = (
        u32s(df, "key")?,
        u32s(df, "period")?,
        ints(df, "start")?,
        u32s(df, "metric")?,
    );
    Ok(values(df)?
        .into_iter()
        .map(|value| ProgramCell {
            program_id: names.strings[key.next().flatten().unwrap_or_default() as usize].to_owned(),
            period: Period::ALL[period.next().flatten().unwrap_or_default() as usize],
            period_start: date(start.next().flatten()),
            metric: Metric::ALL[metric.next().flatten().unwrap_or_default() as usize],
            value,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_ids_are_positions_in_the_catalogue() {
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(m as u32 as usize, i);
        }
    }
}
