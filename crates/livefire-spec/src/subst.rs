//! `${name}` substitution, done once on the document before it is typed: variables
//! first (`vars:` then `--var`), then target addresses. Names filled at send time
//! (`${random.*}`, `${seq}`, `${data.*}`) and `${env:NAME}` (resolved by the engine,
//! so that secrets never reach the file's copies on disk) are left as written.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::yaml::{Kind, Node};

/// Why a `${name}` could not be filled. Reported at the value that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SubstError {
    #[error("unclosed `${{` in `{0}`: write `${{name}}`")]
    Unclosed(String),
    #[error(
        "substituting `${{...}}` makes this value {0} bytes long, over the {MAX_SUBSTITUTED}-byte limit: shorten the variable or reference it less"
    )]
    TooLong(usize),
    #[error(
        "target `{0}` has no address to put in `${{{0}}}` (only http, postgres and proxy targets with `listen` have one)"
    )]
    NoAddress(String),
    #[error("empty `${{}}`: write `${{name}}` with a target or variable name")]
    Empty,
    #[error("unknown name `{name}` in `${{{name}}}`: no targets or vars are declared")]
    NothingDeclared { name: String },
    #[error("unknown name `{name}` in `${{{name}}}`: known targets and vars are {known}")]
    Unknown { name: String, known: String },
}

/// Names left for the engine or the workload to fill.
pub fn is_runtime_name(name: &str) -> bool {
    name.starts_with("env:")
        || name.starts_with("random.")
        || name == "seq"
        || name.starts_with("data.")
}

/// Replaces `${name}` in every value of `tree`; unknown names become errors.
pub fn substitute(tree: &mut Node, overrides: &[(String, String)], out: &mut Vec<Diagnostic>) {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if let Some(entries) = tree.get("vars").and_then(Node::entries) {
        for (k, v) in entries {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    for (k, v) in overrides {
        vars.insert(k.clone(), v.clone());
    }
    // Pass 1: variables everywhere (target addresses may use them).
    tree.walk_scalars_mut(&mut |text, pos| {
        if text.contains("${") {
            match replace(text, &mut |name| vars.get(name).cloned().map(Ok)) {
                Ok(replaced) => *text = replaced,
                // An unclosed `${` is reported by pass 2.
                Err(SubstError::Unclosed(_)) => {}
                // Reported here; pass 2 leaves the variables in place.
                Err(e) => out.push(Diagnostic::error(pos, e.to_string())),
            }
        }
    });
    // Pass 2: target addresses, and every name still unknown is an error.
    let mut addresses: BTreeMap<String, Option<String>> = BTreeMap::new();
    if let Some(entries) = tree.get("targets").and_then(Node::entries) {
        for (k, v) in entries {
            let Some(name) = k.as_str() else { continue };
            let address = v
                .get("http")
                .or_else(|| v.get("postgres").and_then(|p| p.get("dsn")))
                .or_else(|| v.get("proxy").and_then(|p| p.get("listen")))
                .and_then(Node::as_str)
                .map(str::to_owned);
            addresses.insert(name.to_owned(), address);
        }
    }
    if let Some(items) = tree.get("setup").and_then(Node::items) {
        for item in items {
            if let Some(name) = item.get("name").and_then(Node::as_str) {
                addresses.entry(name.to_owned()).or_insert(None);
            }
        }
    }
    let skip_vars = |node: &mut Node, out: &mut Vec<Diagnostic>| {
        node.walk_scalars_mut(&mut |text, pos| {
            if !text.contains("${") {
                return;
            }
            *text = replace(text, &mut |name| {
                // Runtime names are filled later; a variable still here failed pass 1,
                // which said why.
                if is_runtime_name(name) || vars.contains_key(name) {
                    return None;
                }
                Some(match addresses.get(name) {
                    Some(Some(address)) => Ok(address.clone()),
                    Some(None) => Err(SubstError::NoAddress(name.to_owned())),
                    None => Err(unknown_name(name, &vars, &addresses)),
                })
            })
            .unwrap_or_else(|e| {
                out.push(Diagnostic::error(pos, e.to_string()));
                // Keep the text as written so later checks do not pile on.
                text.clone()
            });
        });
    };
    if let Kind::Map(entries) = &mut tree.kind {
        for (k, v) in entries.iter_mut() {
            // `vars:` values are defaults, substituted where they are used.
            if k.as_str() != Some("vars") {
                skip_vars(v, out);
            }
        }
    }
}

fn unknown_name(
    name: &str,
    vars: &BTreeMap<String, String>,
    targets: &BTreeMap<String, Option<String>>,
) -> SubstError {
    if name.is_empty() {
        return SubstError::Empty;
    }
    let known: Vec<String> = targets
        .keys()
        .chain(vars.keys())
        .map(|k| format!("`{k}`"))
        .collect();
    let name = name.to_owned();
    if known.is_empty() {
        SubstError::NothingDeclared { name }
    } else {
        SubstError::Unknown {
            name,
            known: known.join(", "),
        }
    }
}

/// Replaces each `${name}` for which `lookup` returns `Some(Ok(value))`; keeps those
/// for which it returns `None`; the first `Some(Err(e))` is returned as the error.
fn replace(
    text: &str,
    lookup: &mut impl FnMut(&str) -> Option<Result<String, SubstError>>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(SubstError::Unclosed(text.to_owned()));
        };
        let name = after[..end].trim();
        match lookup(name) {
            Some(Ok(value)) => out.push_str(&value),
            Some(Err(e)) => return Err(e),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_SUBSTITUTED {
        return Err(SubstError::TooLong(out.len()));
    }
    Ok(out)
}

/// The longest a value may grow by substitution (a variable referenced many times in an
/// aliased scalar could otherwise exhaust memory).
const MAX_SUBSTITUTED: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_cannot_blow_up_a_value() {
        // Regression (found by reading the fuzzer's gaps): a 10 KB variable referenced a
        // thousand times in an aliased scalar took 500 MB.
        let big = "x".repeat(10_000);
        let mut lookup = |_: &str| Some(Ok(big.clone()));
        let text = "${v}".repeat(1000);
        assert!(
            replace(&text, &mut lookup)
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }

    #[test]
    fn replace_keeps_runtime_names_and_fills_known_ones() {
        let mut lookup = |n: &str| (n == "api").then(|| Ok("http://x".to_string()));
        assert_eq!(
            replace("${api}/a?q=${random.word}", &mut lookup).unwrap(),
            "http://x/a?q=${random.word}"
        );
        assert!(replace("${api", &mut lookup).is_err());
    }
}
