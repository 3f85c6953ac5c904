//! Per-request templates, parsed once and filled at send time: `${random.word}`,
//! `${random.int(A,B)}`, `${random.uuid}`, `${seq}`, `${data.COLUMN}`.

use std::fmt::Write as _;

use rand::Rng;

use crate::data::DataSet;

/// Why a template was refused; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `${{` in `{0}`: close it with `}}`")]
    Unclosed(String),
    #[error("`${{{expr}}}` needs a data file with a `{column}` column: give the load a data file")]
    NoDataFile { expr: String, column: String },
    #[error("`${{{expr}}}`: the data file has no column `{column}` (it has: {columns})")]
    NoColumn {
        expr: String,
        column: String,
        columns: String,
    },
    #[error("bad `${{{0}}}`: write random.int(A,B) with integers A <= B")]
    BadInt(String),
    #[error(
        "unknown template `${{{0}}}`: use random.word, random.int(A,B), random.uuid, seq or data.COLUMN"
    )]
    Unknown(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// Substituted values are escaped for the inside of a JSON string.
    json_escape: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Word,
    Int(i64, i64),
    Uuid,
    Seq,
    Data(usize),
}

/// What a template is filled from.
#[derive(Debug)]
pub struct Fill<'a, R: Rng> {
    pub rng: &'a mut R,
    pub seq: u64,
    pub row: Option<&'a [String]>,
}

const WORDS: [&str; 48] = [
    "apple", "river", "stone", "cloud", "amber", "falcon", "harbor", "maple", "orbit", "pixel",
    "quartz", "saffron", "tundra", "violet", "willow", "zephyr", "anchor", "breeze", "cedar",
    "delta", "ember", "fjord", "glacier", "hazel", "island", "jasper", "kernel", "lagoon",
    "meadow", "nectar", "onyx", "prairie", "quill", "raven", "sierra", "timber", "umber", "valley",
    "walnut", "yarrow", "zinc", "basalt", "copper", "dune", "echo", "flint", "garnet", "heron",
];

impl Template {
    /// Parses `text`; `columns` are the data file's columns (`${data.X}` must name one).
    pub fn parse(text: &str, columns: &[String]) -> Result<Template, TemplateError> {
        Self::parse_inner(text, columns, false)
    }

    /// Parses a template whose substitutions land inside JSON strings.
    pub fn parse_json(text: &str, columns: &[String]) -> Result<Template, TemplateError> {
        Self::parse_inner(text, columns, true)
    }

    fn parse_inner(
        text: &str,
        columns: &[String],
        json_escape: bool,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find("${") {
            if pos > 0 {
                parts.push(Part::Lit(rest[..pos].to_string()));
            }
            let after = &rest[pos + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
            parts.push(parse_expr(after[..end].trim(), columns)?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Template { parts, json_escape })
    }

    /// Whether the template has no substitutions.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Fills the template into `out`.
    pub fn render_into<R: Rng>(&self, out: &mut String, fill: &mut Fill<'_, R>) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Word => out.push_str(WORDS[fill.rng.random_range(0..WORDS.len())]),
                Part::Int(a, b) => {
                    let _ = write!(out, "{}", fill.rng.random_range(*a..=*b));
                }
                Part::Uuid => {
                    let v: u128 = fill.rng.random();
                    let v = (v & !(0xF000u128 << 64) | (0x4000u128 << 64)) & !(0xC000u128 << 48)
                        | (0x8000u128 << 48);
                    let h = format!("{v:032x}");
                    let _ = write!(
                        out,
                        "{}-{}-{}-{}-{}",
                        &h[0..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..32]
                    );
                }
                Part::Seq => {
                    let _ = write!(out, "{}", fill.seq);
                }
                Part::Data(col) => {
                    let v = fill
                        .row
                        .and_then(|r| r.get(*col))
                        .map(String::as_str)
                        .unwrap_or("");
                    if self.json_escape {
                        // serde_json writes a quoted, escaped string; keep its inside.
                        let quoted = serde_json::to_string(v).unwrap_or_default();
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    } else {
                        out.push_str(v);
                    }
                }
            }
        }
    }

    /// Fills the template into a new string.
    pub fn render<R: Rng>(&self, fill: &mut Fill<'_, R>) -> String {
        let mut s = String::new();
        self.render_into(&mut s, fill);
        s
    }
}

fn parse_expr(e: &str, columns: &[String]) -> Result<Part, TemplateError> {
    match e {
        "random.word" => return Ok(Part::Word),
        "random.uuid" => return Ok(Part::Uuid),
        "seq" => return Ok(Part::Seq),
        _ => {}
    }
    if let Some(col) = e.strip_prefix("data.") {
        return match columns.iter().position(|c| c == col) {
            Some(i) => Ok(Part::Data(i)),
            None if columns.is_empty() => Err(TemplateError::NoDataFile {
                expr: e.to_owned(),
                column: col.to_owned(),
            }),
            None => Err(TemplateError::NoColumn {
                expr: e.to_owned(),
                column: col.to_owned(),
                columns: columns.join(", "),
            }),
        };
    }
    if let Some(args) = e
        .strip_prefix("random.int(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let bad = || TemplateError::BadInt(e.to_owned());
        let (a, b) = args.split_once(',').ok_or_else(bad)?;
        let a: i64 = a.trim().parse().map_err(|_| bad())?;
        let b: i64 = b.trim().parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        return Ok(Part::Int(a, b));
    }
    Err(TemplateError::Unknown(e.to_owned()))
}

/// Parses every template of a data set's columns (for errors before the run).
pub fn columns_of(data: Option<&DataSet>) -> Vec<String> {
    data.map(|d| d.columns.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn fills_every_kind() {
        let cols = vec!["user".to_string(), "pw".to_string()];
        let t = Template::parse(
            "/u/${data.user}?n=${random.int(5,7)}&s=${seq}&w=${random.word}&id=${random.uuid}",
            &cols,
        )
        .unwrap();
        let row = vec!["ann".to_string(), "x".to_string()];
        let mut rng = SmallRng::seed_from_u64(1);
        let s = t.render(&mut Fill {
            rng: &mut rng,
            seq: 42,
            row: Some(&row),
        });
        assert!(s.starts_with("/u/ann?n="), "{s}");
        assert!(s.contains("&s=42&w="), "{s}");
        let n: i64 = s
            .split("n=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((5..=7).contains(&n));
        let uuid = s.split("id=").nth(1).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4", "version 4 uuid: {uuid}");
    }

    #[test]
    fn json_escapes_data_values() {
        let cols = vec!["name".to_string()];
        let t = Template::parse_json(r#"{"n":"${data.name}"}"#, &cols).unwrap();
        let row = vec![r#"a"b\c"#.to_string()];
        let mut rng = SmallRng::seed_from_u64(1);
        let s = t.render(&mut Fill {
            rng: &mut rng,
            seq: 0,
            row: Some(&row),
        });
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["n"], r#"a"b\c"#);
    }

    #[test]
    fn bad_templates_say_what_to_do() {
        for (t, want) in [
            ("${nope}", "unknown template"),
            ("${random.int(9,1)}", "A <= B"),
            ("${random.int(x)}", "random.int(A,B)"),
            ("${data.x}", "needs a data file"),
            ("abc${seq", "unclosed"),
        ] {
            let err = Template::parse(t, &[]).unwrap_err().to_string();
            assert!(err.contains(want), "{t}: {err}");
        }
    }
}
