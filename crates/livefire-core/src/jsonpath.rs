//! The small JSON path subset livefire reads everywhere (load checks, probes, login
//! tokens): `$`, `.key`, `['key']`, `["key"]`, `[index]`.

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Follows a parsed path.
pub fn lookup<'a>(doc: &'a serde_json::Value, path: &[Step]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(doc, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

/// A JSON path outside the subset: the path as written and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad JSON path `{path}`: {why}; write it like $.items[0].id")]
pub struct PathError {
    pub path: String,
    pub why: &'static str,
}

/// Parses `$.a.b[0]['c d']`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, PathError> {
    let bad = |why: &'static str| PathError {
        path: path.to_owned(),
        why,
    };
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with `$`"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty key after `.`"));
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
            let inner = r[..end].trim();
            if let Some(k) = inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
                steps.push(Step::Key(k.to_string()));
            } else if let Some(k) = inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                steps.push(Step::Key(k.to_string()));
            } else {
                let i: usize = inner
                    .parse()
                    .map_err(|_| bad("an index must be a number or a quoted key"))?;
                steps.push(Step::Index(i));
            }
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected `.` or `[`"));
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_follows_paths() {
        let doc = serde_json::json!({"items": [{}, {"a b": 3}], "k-1": {"x": [true]}});
        let at = |p: &str| lookup(&doc, &parse_path(p).unwrap()).cloned();
        assert_eq!(at("$.items[1]['a b']"), Some(3.into()));
        assert_eq!(at("$[\"k-1\"].x[0]"), Some(true.into()));
        assert_eq!(at("$"), Some(doc.clone()));
        assert_eq!(at("$.items[5]"), None);
        assert_eq!(at("$.nope.deeper"), None);
        for bad in ["items", "$..x", "$[x", "$[abc]", "$x", "$.a["] {
            let err = parse_path(bad).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("$.items[0].id"),
                "{bad}: {err}"
            );
        }
    }
}
