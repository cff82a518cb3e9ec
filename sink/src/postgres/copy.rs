//! `COPY … FROM STDIN` in Postgres' text format: how a batch appends its
//! deltas. An appended row costs the server a fraction of an upserted one
//! (no index probe, no old row version), which is the point of the delta
//! tables (docs/performance.md).

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, SecondsFormat};
use sqlx::PgConnection;

use crate::Result;
use crate::rows::Value;

/// Rows are sent in chunks of about this many bytes, so the buffer stays
/// small whatever the batch.
const CHUNK: usize = 1 << 20;

/// One row of text-format COPY data under construction.
pub(crate) struct Row<'a> {
    buf: &'a mut String,
    first: bool,
}

impl Row<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.buf.push('\t');
        }
        self.first = false;
    }

    /// A text field, escaped: backslash, tab, newline and carriage return
    /// are the only bytes the text format treats specially.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        // Codes and identifiers rarely hold a special byte: copy them whole.
        if !s
            .bytes()
            .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
        {
            self.buf.push_str(s);
            return self;
        }
        for ch in s.chars() {
            match ch {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                c => self.buf.push(c),
            }
        }
        self
    }

    pub fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => {
                self.sep();
                self.buf.push_str("\\N");
                self
            }
        }
    }

    /// A ledger column's value, NULL when it has none.
    pub fn value(&mut self, v: Value<'_>) -> &mut Self {
        match v {
            Value::Text(Some(t)) => self.text(&t),
            Value::Int(Some(i)) => self.int(i),
            Value::Date(Some(d)) => self.date(d),
            Value::Time(Some(t)) => {
                self.sep();
                let _ = write!(
                    self.buf,
                    "{}",
                    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                );
                self
            }
            Value::Text(None) | Value::Int(None) | Value::Date(None) | Value::Time(None) => {
                self.opt_text(None)
            }
        }
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        let _ = write!(self.buf, "{v}");
        self
    }

    pub fn date(&mut self, d: NaiveDate) -> &mut Self {
        self.sep();
        // By hand for the common four-digit years: chrono's formatter
        // parses its pattern on every call, a visible share of a batch.
        let (y, m, day) = (d.year(), d.month(), d.day());
        if (1000..=9999).contains(&y) {
            let _ = write!(self.buf, "{y}-{m:02}-{day:02}");
        } else {
            let _ = write!(self.buf, "{}", d.format("%Y-%m-%d"));
        }
        self
    }
}

/// Runs `statement` (a `COPY … FROM STDIN`) and streams `items` through
/// `fill`, which writes one row's fields. Returns the rows copied.
pub(crate) async fn copy_in<T>(
    conn: &mut PgConnection,
    statement: &str,
    items: &[T],
    fill: impl Fn(&mut Row<'_>, &T),
) -> Result<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buf = String::with_capacity(CHUNK + 4096);
    for item in items {
        fill(
            &mut Row {
                buf: &mut buf,
                first: true,
            },
            item,
        );
        buf.push('\n');
        if buf.len() >= CHUNK {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    Ok(copy.finish().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(f: impl Fn(&mut Row<'_>)) -> String {
        let mut buf = String::new();
        f(&mut Row {
            buf: &mut buf,
            first: true,
        });
        buf
    }

    #[test]
    fn special_bytes_are_escaped_and_null_is_marked() {
        let s = row(|r| {
            r.text("a\tb\\c\nd\re")
                .opt_text(None)
                .int(-250)
                .date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        });
        assert_eq!(s, "a\\tb\\\\c\\nd\\re\t\\N\t-250\t2024-02-29");
    }

    #[test]
    fn dates_read_as_chrono_writes_them() {
        for (y, m, d) in [
            (2024, 1, 5),
            (1000, 12, 31),
            (9999, 1, 1),
            (999, 3, 4),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                row(|r| {
                    r.date(date);
                }),
                date.format("%Y-%m-%d").to_string()
            );
        }
    }

    #[test]
    fn json_dims_keep_their_quotes_and_escapes() {
        let s = row(|r| {
            r.text(r#"{"role":"a\"b"}"#);
        });
        assert_eq!(s, r#"{"role":"a\\"b"}"#);
    }
}
