//! `environments:`: the same file in every environment. An environment's `vars`,
//! `targets` and `settings` override the file's key by key, on the document itself, so
//! every later message points at the line where the value was written.

use std::collections::{BTreeMap, BTreeSet};

use crate::de::from_node;
use crate::diag::Diagnostic;
use crate::types::Environment;
use crate::yaml::{Kind, Node};

/// The sections an environment may override.
const OVERRIDABLE: &[&str] = &["vars", "targets", "settings"];

/// Types `environments:` (each entry on its own, so every mistake shows at once);
/// returns each environment's name, its typed form and its node.
pub fn typed<'t>(
    tree: &'t Node,
    out: &mut Vec<Diagnostic>,
) -> Vec<(String, Environment, &'t Node)> {
    // The top-level check sees the document without `environments:`: a second one is
    // found here.
    let keys = tree.entries().unwrap_or_default().iter().map(|(k, _)| k);
    for k in keys.filter(|k| k.as_str() == Some("environments")).skip(1) {
        out.push(Diagnostic::error(
            k.pos,
            "duplicate key `environments`: only the first would be read; merge the two into one",
        ));
    }
    let Some(node) = tree.get("environments").filter(|n| !n.is_null()) else {
        return Vec::new();
    };
    let Some(entries) = node.entries() else {
        out.push(Diagnostic::error(
            node.pos,
            format!(
                "expected a mapping of environment names, found {}",
                node.describe()
            ),
        ));
        return Vec::new();
    };
    let mut typed = Vec::new();
    let mut seen = BTreeSet::new();
    for (k, v) in entries {
        let Some(name) = k.as_str() else { continue };
        if !seen.insert(name) {
            out.push(Diagnostic::error(
                k.pos,
                format!("duplicate environment `{name}`"),
            ));
            continue;
        }
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            out.push(Diagnostic::error(
                k.pos,
                format!("environment name `{name}` may use only letters, digits, `-`, `_` and `.`"),
            ));
        }
        match from_node::<Environment>(v) {
            Ok(env) => typed.push((name.to_owned(), env, v)),
            Err(e) => out.push(Diagnostic::error(e.pos.unwrap_or(v.pos), e.message)),
        }
    }
    typed
}

/// The document as it reads in one environment (`env` is that environment's node),
/// without `environments:`.
pub fn resolved(tree: &Node, env: Option<&Node>) -> Node {
    let mut tree = tree.clone();
    let Kind::Map(entries) = &mut tree.kind else {
        return tree;
    };
    entries.retain(|(k, _)| k.as_str() != Some("environments"));
    let Some(env) = env else { return tree };
    for section in OVERRIDABLE {
        let Some(overrides) = env.get(section).and_then(Node::entries) else {
            continue;
        };
        let Some(target) = entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(section))
            .map(|(_, v)| v)
        else {
            // The file has no such section: the environment's becomes it.
            if let (Some(key), Some(value)) = (env.key(section), env.get(section)) {
                entries.push((key.clone(), value.clone()));
            }
            continue;
        };
        if target.entries().is_none() {
            // `vars:` with nothing after it, or a mistake reported by the base check.
            target.kind = Kind::Map(Vec::new());
        }
        let Kind::Map(into) = &mut target.kind else {
            continue;
        };
        for (k, v) in overrides {
            match into.iter_mut().find(|(ik, _)| ik.as_str() == k.as_str()) {
                Some((ik, iv)) => {
                    *ik = k.clone();
                    *iv = v.clone();
                }
                None => into.push((k.clone(), v.clone())),
            }
        }
    }
    tree
}

/// Every name the file could take from `--var`: the keys of `vars:` (the file's and
/// each environment's) and every `${name}` written anywhere that is not filled at run
/// time.
pub fn variable_names(tree: &Node) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add_keys = |vars: Option<&Node>| {
        for (k, _) in vars.and_then(Node::entries).unwrap_or_default() {
            if let Some(k) = k.as_str() {
                names.insert(k.to_owned());
            }
        }
    };
    add_keys(tree.get("vars"));
    for (_, env) in tree
        .get("environments")
        .and_then(Node::entries)
        .unwrap_or_default()
    {
        add_keys(env.get("vars"));
    }
    walk(tree, &mut |text| {
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = after[..end].trim();
            if !name.is_empty() && !crate::subst::is_runtime_name(name) {
                names.insert(name.to_owned());
            }
            rest = &after[end + 1..];
        }
    });
    names
}

fn walk(node: &Node, f: &mut impl FnMut(&str)) {
    match &node.kind {
        Kind::Scalar { text, .. } => f(text),
        Kind::Seq(items) => items.iter().for_each(|n| walk(n, f)),
        Kind::Map(entries) => entries.iter().for_each(|(_, v)| walk(v, f)),
    }
}

/// The names of the environments a document declares, for messages.
pub fn names(tree: &Node) -> Vec<String> {
    let mut names: BTreeMap<String, ()> = BTreeMap::new();
    for (k, _) in tree
        .get("environments")
        .and_then(Node::entries)
        .unwrap_or_default()
    {
        if let Some(k) = k.as_str() {
            names.insert(k.to_owned(), ());
        }
    }
    names.into_keys().collect()
}
