//! The polars roll-up: signed cells in, summed deltas out for the finest
//! grain, every ancestor region × period, and every program × period.

use chrono::NaiveDate;
use polars::prelude::*;

use schemas::{Cell, Level, Metric, Period, ProgramCell, RegionalCell, Regions};

use crate::Result;

/// Holds the region closure (each region → itself and every ancestor), built
/// once from the region table.
pub struct Rollup {
    closure: DataFrame,
}

const KEYS: [&str; 8] = [
    "day",
    "institution",
    "program_id",
    "mission_id",
    "facility_id",
    "region_code",
    "metric",
    "dims",
];

impl Rollup {
    pub fn new(regions: &Regions) -> Result<Rollup> {
        let (mut code, mut anc, mut level) = (Vec::new(), Vec::new(), Vec::new());
        for r in regions.iter() {
            for a in regions.lineage(&r.code) {
                code.push(r.code.as_str());
                anc.push(a.code.as_str());
                level.push(a.level.as_str());
            }
        }
        let closure = DataFrame::new(
            code.len(),
            vec![
                Column::new("region_code".into(), code),
                Column::new("ancestor".into(), anc),
                Column::new("ancestor_level".into(), level),
            ],
        )?;
        Ok(Rollup { closure })
    }

    /// Sums `cells` per daily cell (dropping the ones that cancel out), then
    /// rolls the result up. All three outputs are sorted by key.
    pub fn roll_up(
        &self,
        cells: Vec<Cell>,
    ) -> Result<(Vec<Cell>, Vec<RegionalCell>, Vec<ProgramCell>)> {
        if cells.is_empty() {
            return Ok(Default::default());
        }
        let daily = cells_frame(&cells)?
            .lazy()
            .with_column(col("day").cast(DataType::Date))
            .group_by(KEYS.map(col))
            .agg([col("value").sum()])
            .filter(col("value").neq(lit(0)))
            .sort(KEYS, SortMultipleOptions::default().with_nulls_last(true))
            .collect()?;

        let regional = per_period(
            daily.clone().lazy().join(
                self.closure.clone().lazy(),
                [col("region_code")],
                [col("region_code")],
                JoinArgs::new(JoinType::Inner),
            ),
            &["ancestor", "ancestor_level"],
        )?
        .collect()?;
        let program = per_period(daily.clone().lazy(), &["program_id"])?.collect()?;

        Ok((
            daily_cells(&daily)?,
            regional_cells(&regional)?,
            program_cells(&program)?,
        ))
    }
}

/// The first day of the period: ISO weeks start on Monday, as polars' `1w`.
fn period_start(p: Period) -> Expr {
    let every = match p {
        Period::Day => return col("day"),
        Period::Week => "1w",
        Period::Month => "1mo",
        Period::Quarter => "1q",
        Period::Year => "1y",
    };
    col("day").dt().truncate(lit(every))
}

/// One group-by over the union of every period type, keyed by `by`.
fn per_period(lf: LazyFrame, by: &[&str]) -> Result<LazyFrame> {
    let frames: Vec<LazyFrame> = Period::ALL
        .into_iter()
        .map(|p| {
            let mut cols: Vec<Expr> = by.iter().map(|c| col(*c)).collect();
            cols.extend([
                lit(p.as_str()).alias("period_type"),
                period_start(p).alias("period_start"),
                col("metric"),
                col("value"),
            ]);
            lf.clone().select(cols)
        })
        .collect();
    let mut keys: Vec<&str> = by.to_vec();
    keys.extend(["period_type", "period_start", "metric"]);
    Ok(concat(frames, UnionArgs::default())?
        .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .agg([col("value").sum()])
        .filter(col("value").neq(lit(0)))
        .sort(keys, SortMultipleOptions::default()))
}

fn cells_frame(cells: &[Cell]) -> Result<DataFrame> {
    let day: Vec<i32> = cells.iter().map(|c| days(c.day)).collect();
    let s = |f: fn(&Cell) -> &str| cells.iter().map(f).collect::<Vec<&str>>();
    let mission: Vec<Option<&str>> = cells.iter().map(|c| c.mission_id.as_deref()).collect();
    let value: Vec<i64> = cells.iter().map(|c| c.value).collect();
    Ok(DataFrame::new(
        cells.len(),
        vec![
            Column::new("day".into(), day),
            Column::new("institution".into(), s(|c| &c.institution)),
            Column::new("program_id".into(), s(|c| &c.program_id)),
            Column::new("mission_id".into(), mission),
            Column::new("facility_id".into(), s(|c| &c.facility_id)),
            Column::new("region_code".into(), s(|c| &c.region_code)),
            Column::new("metric".into(), s(|c| c.metric.as_str())),
            Column::new("dims".into(), s(|c| &c.dims)),
            Column::new("value".into(), value),
        ],
    )?)
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

fn days(d: NaiveDate) -> i32 {
    (d - EPOCH).num_days() as i32
}

fn date_col(df: &DataFrame, name: &str) -> Result<Vec<NaiveDate>> {
    let c = df.column(name)?.cast(&DataType::Int32)?;
    Ok(c.i32()?
        .iter()
        .map(|d| EPOCH + chrono::TimeDelta::days(d.unwrap_or_default() as i64))
        .collect())
}

fn str_col<'a>(df: &'a DataFrame, name: &str) -> Result<impl Iterator<Item = Option<&'a str>>> {
    Ok(df.column(name)?.str()?.iter())
}

fn values(df: &DataFrame) -> Result<Vec<i64>> {
    Ok(df
        .column("value")?
        .i64()?
        .iter()
        .map(Option::unwrap_or_default)
        .collect())
}

fn metric(s: Option<&str>) -> Metric {
    Metric::parse(s.unwrap_or_default()).expect("metric names come from Metric::as_str")
}

fn daily_cells(df: &DataFrame) -> Result<Vec<Cell>> {
    let owned = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let mut out = Vec::with_capacity(df.height());
    let cols = (
        date_col(df, "day")?,
        str_col(df, "institution")?,
        str_col(df, "program_id")?,
        str_col(df, "mission_id")?,
        str_col(df, "facility_id")?,
        str_col(df, "region_code")?,
        str_col(df, "metric")?,
        str_col(df, "dims")?,
        values(df)?,
    );
    let (day, mut inst, mut prog, mut mission, mut fac, mut region, mut met, mut dims, value) =
        cols;
    for (day, value) in day.into_iter().zip(value) {
        out.push(Cell {
            day,
            institution: owned(inst.next().flatten()),
            program_id: owned(prog.next().flatten()),
            mission_id: mission.next().flatten().map(str::to_owned),
            facility_id: owned(fac.next().flatten()),
            region_code: owned(region.next().flatten()),
            metric: metric(met.next().flatten()),
            dims: owned(dims.next().flatten()),
            value,
        });
    }
    Ok(out)
}

fn regional_cells(df: &DataFrame) -> Result<Vec<RegionalCell>> {
    let starts = date_col(df, "period_start")?;
    let (mut code, mut level, mut period, mut met) = (
        str_col(df, "ancestor")?,
        str_col(df, "ancestor_level")?,
        str_col(df, "period_type")?,
        str_col(df, "metric")?,
    );
    Ok(starts
        .into_iter()
        .zip(values(df)?)
        .map(|(period_start, value)| RegionalCell {
            region_code: code.next().flatten().unwrap_or_default().to_owned(),
            level: Level::parse(level.next().flatten().unwrap_or_default())
                .expect("levels come from Level::as_str"),
            period: Period::parse(period.next().flatten().unwrap_or_default())
                .expect("periods come from Period::as_str"),
            period_start,
            metric: metric(met.next().flatten()),
            value,
        })
        .collect())
}

fn program_cells(df: &DataFrame) -> Result<Vec<ProgramCell>> {
    let starts = date_col(df, "period_start")?;
    let (mut prog, mut period, mut met) = (
        str_col(df, "program_id")?,
        str_col(df, "period_type")?,
        str_col(df, "metric")?,
    );
    Ok(starts
        .into_iter()
        .zip(values(df)?)
        .map(|(period_start, value)| ProgramCell {
            program_id: prog.next().flatten().unwrap_or_default().to_owned(),
            period: Period::parse(period.next().flatten().unwrap_or_default())
                .expect("periods come from Period::as_str"),
            period_start,
            metric: metric(met.next().flatten()),
            value,
        })
        .collect())
}
