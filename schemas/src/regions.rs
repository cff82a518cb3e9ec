//! The region tree: every code an event may name, its level and its parent.
//!
//! The shipped table (`data/regions.csv`, made by `scripts/gen-regions.py`)
//! holds mainland China's GB/T 2260 divisions under `CN`, the ISO 3166-1
//! countries and Morocco's ISO 3166-2 regions. Operators add rows with a CSV
//! of the same shape (`regions.extra_file`); an added row may also rename a
//! shipped one, but never changes its level or parent, since totals already
//! written depend on them.

use std::collections::HashMap;
use std::fmt;

const SHIPPED: &str = include_str!("../data/regions.csv");

/// Levels from the top of the tree down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Country,
    Province,
    Prefecture,
    County,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Country,
        Level::Province,
        Level::Prefecture,
        Level::County,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Country => "country",
            Level::Province => "province",
            Level::Prefecture => "prefecture",
            Level::County => "county",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
}

/// A region table whose every parent exists and sits at a higher level, so
/// walking up from any code ends at a country.
#[derive(Debug, Clone)]
pub struct Regions {
    /// foldhash: every accepted event looks its region up here.
    by_code: HashMap<String, Region, foldhash::fast::RandomState>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region table, line {line}: {message}")]
pub struct RegionTableError {
    pub line: usize,
    pub message: String,
}

impl Regions {
    /// The table compiled into the binary.
    pub fn shipped() -> Regions {
        let mut r = Regions {
            by_code: HashMap::default(),
        };
        r.add_csv(SHIPPED)
            .expect("the shipped region table is valid");
        r
    }

    /// Adds (or renames) regions from CSV text with the header
    /// `region_code,name,level,parent_code`. Rows are checked in order, so a
    /// parent must come before its children.
    pub fn add_csv(&mut self, text: &str) -> Result<usize, RegionTableError> {
        let err = |line, message: String| RegionTableError { line, message };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, h)) if h.trim() == "region_code,name,level,parent_code" => {}
            _ => {
                return Err(err(
                    1,
                    "expected the header `region_code,name,level,parent_code`".into(),
                ));
            }
        }
        let mut added = 0;
        for (i, line) in lines {
            let region = self.row(line).map_err(|m| err(i + 1, m))?;
            self.by_code.insert(region.code.clone(), region);
            added += 1;
        }
        Ok(added)
    }

    /// One CSV row, checked against the regions already in the table: the
    /// error is the message, without the line number the caller adds.
    fn row(&self, line: &str) -> Result<Region, String> {
        let f = split_csv_line(line)?;
        let [code, name, level, parent] = <[String; 4]>::try_from(f)
            .map_err(|f| format!("expected 4 fields, found {}", f.len()))?;
        if code.is_empty() || code.len() > 64 {
            return Err("region_code must be 1–64 characters".into());
        }
        let level = Level::parse(&level).ok_or_else(|| {
            format!("level `{level}` is not one of country, province, prefecture, county")
        })?;
        let parent = (!parent.is_empty()).then_some(parent);
        self.check_parent(&code, level, parent.as_deref())?;
        if let Some(old) = self.by_code.get(&code)
            && (old.level != level || old.parent != parent)
        {
            return Err(format!(
                "`{code}` exists with another level or parent; only its name can change"
            ));
        }
        Ok(Region {
            code,
            name,
            level,
            parent,
        })
    }

    /// A country has no parent; any other region has one, already in the
    /// table and at a higher level, so walking up always ends at a country.
    fn check_parent(&self, code: &str, level: Level, parent: Option<&str>) -> Result<(), String> {
        match (parent, level) {
            (None, Level::Country) => Ok(()),
            (None, _) => Err(format!("`{code}` needs a parent_code")),
            (Some(_), Level::Country) => Err(format!("country `{code}` cannot have a parent")),
            (Some(p), _) => {
                let pl =
                    self.by_code.get(p).map(|r| r.level).ok_or_else(|| {
                        format!("parent `{p}` of `{code}` is not defined above it")
                    })?;
                if pl >= level {
                    return Err(format!(
                        "parent `{p}` ({pl}) is not above `{code}` ({level})"
                    ));
                }
                Ok(())
            }
        }
    }

    pub fn get(&self, code: &str) -> Option<&Region> {
        self.by_code.get(code)
    }

    pub fn contains(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.by_code.values()
    }

    /// The region itself, then each ancestor up to its country.
    pub fn lineage<'a>(&'a self, code: &str) -> impl Iterator<Item = &'a Region> + 'a {
        let mut next = self.by_code.get(code);
        std::iter::from_fn(move || {
            let r = next?;
            next = r.parent.as_deref().and_then(|p| self.by_code.get(p));
            Some(r)
        })
    }

    /// Regions ordered parents first, as they must be inserted.
    pub fn parents_first(&self) -> Vec<&Region> {
        let mut v: Vec<&Region> = self.by_code.values().collect();
        v.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
        v
    }
}

/// Splits one RFC 4180 line (quoted fields may hold commas and `""`).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_knows_the_contract_examples() {
        let r = Regions::shipped();
        let chain: Vec<_> = r
            .lineage("620921")
            .map(|r| (r.code.as_str(), r.level))
            .collect();
        assert_eq!(
            chain,
            [
                ("620921", Level::County),
                ("620900", Level::Prefecture),
                ("620000", Level::Province),
                ("CN", Level::Country)
            ]
        );
        assert!(r.contains("130184") && r.contains("141032"));
        assert_eq!(r.get("MA").map(|r| r.level), Some(Level::Country));
        let ma: Vec<_> = r
            .iter()
            .filter(|x| x.parent.as_deref() == Some("MA"))
            .collect();
        assert_eq!(ma.len(), 12, "Morocco's twelve regions");
        assert!(ma.iter().all(|x| x.level == Level::Province));
        let counties = r.iter().filter(|x| x.level == Level::County).count();
        assert!(counties > 2800, "{counties} counties");
    }

    #[test]
    fn operators_can_add_regions_and_mistakes_are_named() {
        let mut r = Regions::shipped();
        let n = r
            .add_csv(
                "region_code,name,level,parent_code\nMA-01-X,\"Tanger, Asilah\",prefecture,MA-01\n",
            )
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(r.get("MA-01-X").unwrap().name, "Tanger, Asilah");
        assert_eq!(r.lineage("MA-01-X").count(), 3);
        let e = r
            .add_csv("region_code,name,level,parent_code\nZZ-1,x,county,NOPE\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("NOPE"), "{e}");
        let e = r
            .add_csv("region_code,name,level,parent_code\n620921,x,province,CN\n")
            .unwrap_err();
        assert!(e.message.contains("only its name"), "{e}");
    }
}
