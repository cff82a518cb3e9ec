//! The analyst tables of `docs/contract.md` ("What analysts get") against
//! the migrations: once migrated, each backend has every table the contract
//! lists, with at least the columns it lists, and on Postgres the types it
//! names. The contract's other tables are checked against the `schemas`
//! crate in `schemas/tests/contract.rs`.

mod support;

use std::collections::BTreeSet;

use sink::Sink;
use support::{Db, SqliteDb};

/// The contract's analyst tables: name and documented columns, in order.
fn documented() -> Vec<(String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let heading = "\n## What analysts get (Postgres schema `outreach`)\n";
    let section = &doc[doc.find(heading).expect(heading) + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut rows = section.lines().filter(|l| l.starts_with('|')).map(|l| {
        l.trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect::<Vec<_>>()
    });
    let header = rows.next().unwrap();
    assert_eq!(header, ["table", "one row per", "columns (at least)"]);
    let tables: Vec<(String, Vec<String>)> = rows
        .filter(|r| !r[0].starts_with("---"))
        .map(|r| (first_code(r[0]).to_owned(), columns(r[2])))
        .collect();
    assert!(tables.len() >= 7, "{tables:?}");
    tables
}

fn first_code(text: &str) -> &str {
    text.split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `code` in {text:?}"))
}

/// `` `a`, `b` (nullable), `c` (jsonb, `{}` when none) ``: a, b, c.
fn columns(cell: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        items.last_mut().unwrap().push(c);
    }
    items.iter().map(|i| first_code(i).to_owned()).collect()
}

fn missing(documented: &[String], present: &[String]) -> Vec<String> {
    let present: BTreeSet<&String> = present.iter().collect();
    documented
        .iter()
        .filter(|c| !present.contains(c))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contracts_analyst_tables_exist_with_their_columns_on_postgres() {
    let db = Db::new().await;
    let sink = Sink::connect(&sink::Settings::new(&db.url)).await.unwrap();
    sink.migrate().await.unwrap();
    sink.close().await;
    let pool = db.pool().await;
    let mut wrong = Vec::new();
    for (table, columns) in documented() {
        let present: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'outreach' AND table_name = $1",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await
        .unwrap();
        let names: Vec<String> = present.iter().map(|(n, _)| n.clone()).collect();
        let gone = missing(&columns, &names);
        if !gone.is_empty() {
            wrong.push(format!("outreach.{table} lacks {gone:?} (has {names:?})"));
        }
        // "`dims` (jsonb, ...)", "Values are `numeric`".
        for (column, ty) in &present {
            let expected = match column.as_str() {
                "dims" => "jsonb",
                "value" => "numeric",
                _ => continue,
            };
            if ty != expected {
                wrong.push(format!("outreach.{table}.{column} is {ty}, not {expected}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contracts_analyst_tables_exist_with_their_columns_on_sqlite() {
    let db = SqliteDb::new();
    let sink = Sink::connect(&sink::Settings::new(&db.url)).await.unwrap();
    sink.migrate().await.unwrap();
    sink.close().await;
    let pool = db.pool().await;
    let mut wrong = Vec::new();
    for (table, columns) in documented() {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .unwrap();
        let gone = missing(&columns, &names);
        if !gone.is_empty() {
            wrong.push(format!("{table} lacks {gone:?} (has {names:?})"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
