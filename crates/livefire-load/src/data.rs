//! Data files for `${data.COLUMN}`: CSV with a header line, or JSON lines (one object a
//! line). Read once before the run; a missing or malformed file is an error with its line.

use std::path::Path;

use crate::LoadError;

/// Why a data file was refused; the line is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}; check the path")]
    Read(#[source] std::io::Error),
    #[error("has no rows; add at least one")]
    NoRows,
    #[error("is empty; the first line must name the columns")]
    NoHeader,
    #[error("line {line}: {got} fields, but the header has {want}")]
    Fields {
        line: usize,
        got: usize,
        want: usize,
    },
    #[error("line {line}: a quoted field is not closed; add the closing `\"`")]
    UnclosedQuote { line: usize },
    #[error("line {line}: not JSON: {source}")]
    NotJson {
        line: usize,
        source: serde_json::Error,
    },
    #[error("line {line}: not a JSON object")]
    NotObject { line: usize },
}

/// Rows of a data file, all values as text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl DataSet {
    /// Reads a CSV file (`.csv`) or JSON lines (anything else whose first non-blank
    /// character is `{`).
    pub fn from_file(path: &Path) -> Result<DataSet, LoadError> {
        let err = |source: DataError| LoadError::Data {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(DataError::Read(e)))?;
        let is_json = text.trim_start().starts_with('{');
        let data = if is_json {
            Self::from_json_lines(&text)
        } else {
            Self::from_csv(&text)
        }
        .map_err(err)?;
        if data.rows.is_empty() {
            return Err(err(DataError::NoRows));
        }
        Ok(data)
    }

    /// Parses CSV text with a header line (RFC 4180 quoting).
    pub fn from_csv(text: &str) -> Result<DataSet, DataError> {
        let mut records = parse_csv(text)?;
        if records.is_empty() {
            return Err(DataError::NoHeader);
        }
        let columns = records.remove(0).1;
        let mut rows = Vec::with_capacity(records.len());
        for (line, r) in records {
            if r.len() == 1 && r[0].is_empty() {
                continue;
            }
            if r.len() != columns.len() {
                return Err(DataError::Fields {
                    line,
                    got: r.len(),
                    want: columns.len(),
                });
            }
            rows.push(r);
        }
        Ok(DataSet { columns, rows })
    }

    /// Parses JSON lines: one object a line; columns are the keys of the first line.
    pub fn from_json_lines(text: &str) -> Result<DataSet, DataError> {
        let mut columns: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|source| DataError::NotJson {
                    line: i + 1,
                    source,
                })?;
            let obj = v.as_object().ok_or(DataError::NotObject { line: i + 1 })?;
            if columns.is_empty() {
                columns = obj.keys().cloned().collect();
            }
            rows.push(
                columns
                    .iter()
                    .map(|c| match obj.get(c) {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    })
                    .collect(),
            );
        }
        Ok(DataSet { columns, rows })
    }

    /// The row for send `seq`.
    pub fn row(&self, seq: u64) -> Option<&[String]> {
        if self.rows.is_empty() {
            return None;
        }
        Some(&self.rows[(seq % self.rows.len() as u64) as usize])
    }
}

/// Records with the 1-based line each starts on.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut record = Vec::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() => in_quotes = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                out.push((start_line, std::mem::take(&mut record)));
                line += 1;
                start_line = line;
            }
            ('\n', true) => {
                line += 1;
                field.push('\n');
            }
            (c, _) => field.push(c),
        }
    }
    if in_quotes {
        return Err(DataError::UnclosedQuote { line: start_line });
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push((start_line, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes() {
        let d = DataSet::from_csv("user,note\nann,\"a, \"\"b\"\"\"\nbob,x\n").unwrap();
        assert_eq!(d.columns, vec!["user", "note"]);
        assert_eq!(
            d.rows,
            vec![
                vec!["ann".to_string(), "a, \"b\"".to_string()],
                vec!["bob".into(), "x".into()]
            ]
        );
        assert_eq!(d.row(3).unwrap()[0], "bob");
        assert!(
            DataSet::from_csv("a,b\n1\n")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(
            DataSet::from_csv("a\n\"x\n")
                .unwrap_err()
                .to_string()
                .contains("not closed")
        );
    }

    #[test]
    fn json_lines() {
        let d =
            DataSet::from_json_lines("{\"id\":1,\"name\":\"x\"}\n\n{\"id\":2,\"name\":\"y\"}\n")
                .unwrap();
        assert_eq!(d.columns, vec!["id", "name"]);
        assert_eq!(d.rows[1], vec!["2".to_string(), "y".to_string()]);
        assert!(
            DataSet::from_json_lines("{\"a\":1}\n[1]\n")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
