//! The text of a fold's statements, built only from the tables'
//! constants (`mod.rs`), never from input: the one statement that moves a
//! table's deltas into its cells, and the ones that find and explain the
//! cells whose sums would not fit.

use crate::lanes::Range;

use super::{Hold, PERIODS, Table, Target};

/// The condition for `range`, its boundary bound as `$1`.
pub(super) fn predicate(range: Range<'_>) -> String {
    range
        .operator()
        .map(|op| format!(" WHERE region_code {op} $1"))
        .unwrap_or_default()
}

impl Table {
    pub(super) fn carried_cols(&self) -> String {
        self.carried
            .iter()
            .map(|c| format!(", {}", c.column))
            .collect()
    }

    pub(super) fn carried_aggs(&self) -> String {
        self.carried
            .iter()
            .map(|c| format!(", {agg}({col}) AS {col}", agg = c.deltas, col = c.column))
            .collect()
    }

    /// The CTEs after `moved` and the query over them that yields the
    /// cells' rows (key, value, carried columns), unordered and unfiltered.
    pub(super) fn sums_sql(&self) -> (String, String) {
        let carried_cols = self.carried_cols();
        let carried_aggs = self.carried_aggs();
        let Some(owner) = self.owner else {
            let key = self.key.join(", ");
            return (
                String::new(),
                format!(
                    "SELECT {key}, sum(value) AS value{carried_aggs} FROM moved GROUP BY {key}"
                ),
            );
        };
        let mut ctes = format!(
            ",\n p_day AS MATERIALIZED (SELECT {owner}, day AS period_start, metric, \
             sum(value) AS value{carried_aggs} FROM moved GROUP BY {owner}, day, metric)"
        );
        let mut union = format!(
            "SELECT {owner}, 'day' AS period_type, period_start, metric, value{carried_cols} FROM p_day"
        );
        for (period, finer) in PERIODS {
            ctes += &format!(
                ",\n p_{period} AS MATERIALIZED (SELECT {owner}, \
                 date_trunc('{period}', period_start::timestamp)::date AS period_start, metric, \
                 sum(value) AS value{carried_aggs} FROM p_{finer} GROUP BY 1, 2, 3)"
            );
            union += &format!(
                "\n UNION ALL SELECT {owner}, '{period}', period_start, metric, value{carried_cols} \
                 FROM p_{period}"
            );
        }
        (ctes, union)
    }

    /// The deltas (aliased `d`) of `range` that `hold` takes.
    pub(super) fn deltas_where(&self, range: Range<'_>, hold: Hold) -> String {
        let held = format!(
            "EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = '{}' \
             AND h.owner = d.{} AND h.metric = d.metric AND h.year = date_trunc('year', d.day::timestamp)::date)",
            self.deltas, self.held_owner
        );
        let mut conditions: Vec<String> = range
            .operator()
            .map(|op| format!("d.region_code {op} $1"))
            .into_iter()
            .collect();
        match hold {
            Hold::None => {}
            Hold::Exclude => conditions.push(format!("NOT {held}")),
            Hold::Only => conditions.push(held),
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// One statement: take every visible delta of `range` out, sum them per
    /// key, add the sums to the cells in key order (so concurrent writers
    /// of the cells, if any, lock rows in the same order).
    pub(super) fn fold_sql(&self, range: Range<'_>, target: Target, hold: Hold) -> String {
        let key = self.key.join(", ");
        let delta_key = self.delta_key.join(", ");
        let carried_cols = self.carried_cols();
        let carried_set: String = self
            .carried
            .iter()
            .map(|c| format!(", {} = {}", c.column, c.stored))
            .collect();
        let (ctes, sums) = self.sums_sql();
        let on_conflict = match target {
            Target::Cells => format!(
                "ON CONFLICT {} DO UPDATE SET value = c.value + excluded.value{carried_set}",
                self.conflict
            ),
            Target::Empty => String::new(),
        };
        format!(
            "WITH moved AS (DELETE FROM outreach.{deltas} d{range} RETURNING {delta_key}, value{carried_cols}){ctes},
                  added AS (
               INSERT INTO outreach.{cells} AS c ({key}, value{carried_cols})
               SELECT {key}, value::bigint{carried_cols} FROM ({sums}) s
               WHERE value <> 0 ORDER BY {key}
               {on_conflict}
               RETURNING 1)
             SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)",
            deltas = self.deltas,
            cells = self.cells,
            range = self.deltas_where(range, hold),
        )
    }

    /// The (owner, metric, year) with a cell whose stored value plus the
    /// pending deltas of `range` do not fit a bigint: the fold's own sums,
    /// every period, joined to the cells. A week that spans New Year holds
    /// both years.
    pub(super) fn overflowing_sql(&self, range: Range<'_>, hold: Hold) -> String {
        let (ctes, sums) = self.sums_sql();
        let joined = self
            .key
            .iter()
            .map(|k| match *k {
                // The one nullable key column (daily cells' mission).
                "mission_id" => format!("c.{k} IS NOT DISTINCT FROM s.{k}"),
                _ => format!("c.{k} = s.{k}"),
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let (first, last) = match self.owner {
            Some(_) => (
                "s.period_start",
                "CASE s.period_type WHEN 'week' THEN s.period_start + 6 ELSE s.period_start END",
            ),
            None => ("s.day", "s.day"),
        };
        format!(
            "WITH moved AS (SELECT {delta_key}, value{carried} FROM outreach.{deltas} d{deltas_where}){ctes},
                  over AS (SELECT s.{owner} AS owner, s.metric, {first} AS first, {last} AS last,
                                  coalesce(c.value, 0) AS stored, s.value AS pending
                           FROM ({sums}) s LEFT JOIN outreach.{cells} c ON {joined}
                           WHERE coalesce(c.value, 0) + s.value
                                 NOT BETWEEN -9223372036854775808 AND 9223372036854775807)
             SELECT owner, metric, year, max(stored)::text AS stored, max(pending)::text AS pending
             FROM (SELECT *, date_trunc('year', first::timestamp)::date AS year FROM over
                   UNION SELECT *, date_trunc('year', last::timestamp)::date FROM over) y
             GROUP BY 1, 2, 3",
            delta_key = self.delta_key.join(", "),
            carried = self.carried_cols(),
            deltas_where = self.deltas_where(range, hold),
            deltas = self.deltas,
            cells = self.cells,
            owner = self.held_owner,
        )
    }

    /// The three institutions whose ledger facts add most to a held
    /// (owner, metric, year): facts of its region and the regions below it,
    /// or of its program.
    pub(super) fn sources_sql(&self) -> String {
        let owned = match (self.owner, self.regional) {
            (Some(_), true) => {
                "f.region_code IN (WITH RECURSIVE r AS (
                    SELECT region_code FROM outreach.regions WHERE region_code = $1
                    UNION ALL SELECT g.region_code FROM outreach.regions g
                    JOIN r ON g.parent_code = r.region_code) SELECT region_code FROM r)"
            }
            (Some(_), false) => "f.program_id = $1",
            (None, _) => "f.region_code = $1",
        };
        format!(
            "SELECT f.institution_id, count(*), sum(f.value)::text FROM outreach.activity_facts f
             WHERE {owned} AND f.metric = $2 AND f.day >= $3 AND f.day < ($3 + interval '1 year')
             GROUP BY 1 ORDER BY sum(f.value) DESC LIMIT 3"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::TABLES;
    use super::*;

    #[test]
    fn the_fold_moves_and_sums_in_key_order() {
        let sql = TABLES[1].fold_sql(Range::All, Target::Cells, Hold::None);
        assert!(sql.contains("DELETE FROM outreach.regional_deltas d RETURNING region_code, day, metric, value, region_level, updated_at"));
        assert!(sql.contains("FROM moved GROUP BY region_code, day, metric"));
        assert!(sql.contains("date_trunc('quarter', period_start::timestamp)::date AS period_start, metric, sum(value) AS value, min(region_level) AS region_level, max(updated_at) AS updated_at FROM p_month"));
        assert!(sql.contains("UNION ALL SELECT region_code, 'year', period_start"));
        assert!(sql.contains("ORDER BY region_code, period_type, period_start, metric"));
        assert!(sql.contains("updated_at = greatest(c.updated_at, excluded.updated_at)"));
        let daily = TABLES[0].fold_sql(Range::All, Target::Cells, Hold::None);
        assert!(!daily.contains("p_day"), "daily cells have the deltas' key");
    }

    #[test]
    fn held_cells_are_left_out_or_taken_alone() {
        for t in &TABLES {
            let out = t.fold_sql(Range::All, Target::Cells, Hold::Exclude);
            let only = t.fold_sql(Range::All, Target::Cells, Hold::Only);
            let none = t.fold_sql(Range::All, Target::Cells, Hold::None);
            let held = format!(
                "EXISTS (SELECT FROM outreach.held_cells h WHERE h.deltas = '{}'",
                t.deltas
            );
            assert!(out.contains(&format!("d WHERE NOT {held}")));
            assert!(only.contains(&format!("d WHERE {held}")));
            assert!(!none.contains("held_cells"));
        }
        let lane = TABLES[1].fold_sql(Range::From("b"), Target::Cells, Hold::Exclude);
        assert!(lane.contains("WHERE d.region_code >= $1 AND NOT EXISTS"));
    }

    #[test]
    fn an_empty_target_is_inserted_without_conflict_checks() {
        for t in &TABLES {
            assert!(
                t.fold_sql(Range::All, Target::Cells, Hold::None)
                    .contains("ON CONFLICT")
            );
            assert!(
                !t.fold_sql(Range::All, Target::Empty, Hold::None)
                    .contains("ON CONFLICT")
            );
        }
    }

    #[test]
    fn the_lanes_take_disjoint_regions() {
        for t in TABLES.iter().filter(|t| t.regional) {
            let below = t.fold_sql(Range::Below("b"), Target::Cells, Hold::None);
            let from = t.fold_sql(Range::From("b"), Target::Cells, Hold::None);
            let whole = t.fold_sql(Range::All, Target::Cells, Hold::None);
            let deltas = format!("DELETE FROM outreach.{}", t.deltas);
            assert!(below.contains(&format!("{deltas} d WHERE d.region_code < $1 RETURNING")));
            assert!(from.contains(&format!("{deltas} d WHERE d.region_code >= $1 RETURNING")));
            assert!(whole.contains(&format!("{deltas} d RETURNING")));
        }
        assert!(
            !TABLES[2].regional,
            "program cells have no region: the first lane folds them"
        );
    }
}
