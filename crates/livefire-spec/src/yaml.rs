//! A YAML (and so JSON) document as a tree of nodes that remember where they were
//! written, so every later error can point at a line and column.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A position in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A syntax error, located.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// True for an empty plain scalar, `~` and `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if is_null_text(text))
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node for `key`, if this is a mapping that has it.
    pub fn key(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// A short name of what this node is, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "nothing",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Visits every scalar node, mutably, in document order.
    pub fn walk_scalars_mut(&mut self, f: &mut impl FnMut(&mut String, Pos)) {
        match &mut self.kind {
            Kind::Scalar { text, .. } => f(text, self.pos),
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.walk_scalars_mut(f)),
            // Keys are names, not values: only values take `${...}` substitution.
            Kind::Map(entries) => entries.iter_mut().for_each(|(_, v)| v.walk_scalars_mut(f)),
        }
    }

    /// Converts to JSON with YAML 1.2 core-schema typing of plain scalars.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar { text, plain: false } => Value::String(text.clone()),
            Kind::Scalar { text, plain: true } => match plain_scalar(text) {
                Plain::Null => Value::Null,
                Plain::Bool(b) => Value::Bool(b),
                Plain::Int(i) => Value::from(i),
                Plain::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(text.clone())),
                Plain::Str => Value::String(text.clone()),
            },
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// How a plain scalar reads under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

pub fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

pub fn plain_scalar(text: &str) -> Plain {
    if is_null_text(text) {
        return Plain::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Plain::Int(i);
    }
    let numeric = text
        .starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    if numeric && let Ok(f) = text.parse::<f64>() {
        return Plain::Float(f);
    }
    Plain::Str
}

/// How deep mappings and lists may nest. Every later pass (substitution, typing, JSON)
/// recurses over the tree, so without a bound a file of `- - - - ...` overflows the
/// stack; real experiments nest fewer than 20 levels.
pub const MAX_DEPTH: usize = 128;

/// How much aliases (`*name`) may copy in all, counting one per node plus the bytes of
/// its text. Each alias copies its anchored node, so a few lines of nested aliases
/// ("billion laughs") would otherwise expand to gigabytes.
pub const MAX_ALIAS_EXPANSION: usize = 1_000_000;

/// Parses one YAML document. An empty document is an empty mapping's worth of nothing:
/// it parses to a null scalar at 1:1.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        aliased: 0,
    };
    let too_deep = |pos| SyntaxError {
        pos,
        message: format!(
            "lists and mappings nest deeper than {MAX_DEPTH} levels: flatten the document"
        ),
    };
    for item in Parser::new_from_str(source) {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_owned(),
        })?;
        let pos = Pos {
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        };
        match event {
            Event::DocumentStart(_) if builder.root.is_some() => {
                return Err(SyntaxError {
                    pos,
                    message: "more than one YAML document: an experiment file holds exactly one"
                        .into(),
                });
            }
            Event::Scalar(text, style, anchor, _) => {
                let plain = matches!(style, ScalarStyle::Plain);
                builder.push(
                    Node {
                        kind: Kind::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                        pos,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(..) | Event::MappingStart(..)
                if builder.stack.len() >= MAX_DEPTH =>
            {
                return Err(too_deep(pos));
            }
            Event::SequenceStart(anchor, _) => {
                builder.stack.push(Open::Seq(pos, anchor, Vec::new()))
            }
            Event::MappingStart(anchor, _) => {
                builder.stack.push(Open::Map(pos, anchor, Vec::new(), None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match builder.stack.pop() {
                    Some(Open::Seq(pos, anchor, items)) => (
                        Node {
                            kind: Kind::Seq(items),
                            pos,
                        },
                        anchor,
                    ),
                    Some(Open::Map(pos, anchor, entries, _)) => (
                        Node {
                            kind: Kind::Map(entries),
                            pos,
                        },
                        anchor,
                    ),
                    None => continue,
                };
                builder.push(node, anchor);
            }
            Event::Alias(id) => match builder.anchors.get(&id) {
                Some(anchored) => {
                    if builder.stack.len() + anchored.height > MAX_DEPTH {
                        return Err(too_deep(pos));
                    }
                    builder.aliased = builder.aliased.saturating_add(anchored.weight);
                    if builder.aliased > MAX_ALIAS_EXPANSION {
                        return Err(SyntaxError {
                            pos,
                            message: format!(
                                "aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and bytes: write the repeated part out, or alias it fewer times"
                            ),
                        });
                    }
                    let mut node = anchored.node.clone();
                    node.pos = pos;
                    builder.push(node, 0);
                }
                None => {
                    return Err(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            _ => {}
        }
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Scalar {
            text: String::new(),
            plain: true,
        },
        pos: Pos { line: 1, col: 1 },
    }))
}

enum Open {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Anchored>,
    root: Option<Node>,
    /// The weight copied by aliases so far.
    aliased: usize,
}

/// An anchored node with what copying it costs.
struct Anchored {
    node: Node,
    /// Nodes plus scalar bytes (see [`MAX_ALIAS_EXPANSION`]).
    weight: usize,
    /// Levels of lists and mappings, 0 for a scalar.
    height: usize,
}

/// `(weight, height)` of `node`; recursion is bounded by [`MAX_DEPTH`].
fn measure(node: &Node) -> (usize, usize) {
    match &node.kind {
        Kind::Scalar { text, .. } => (1 + text.len(), 0),
        Kind::Seq(items) => items.iter().map(measure).fold((1, 1), |(w, h), (iw, ih)| {
            (w.saturating_add(iw), h.max(ih + 1))
        }),
        Kind::Map(entries) => entries
            .iter()
            .flat_map(|(k, v)| [measure(k), measure(v)])
            .fold((1, 1), |(w, h), (iw, ih)| {
                (w.saturating_add(iw), h.max(ih + 1))
            }),
    }
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            let (weight, height) = measure(&node);
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    weight,
                    height,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, entries, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_the_value() {
        let doc = parse("a: 1\nlist:\n  - x\n  - { k: v }\n").unwrap();
        assert_eq!(doc.get("a").unwrap().pos, Pos { line: 1, col: 4 });
        assert_eq!(doc.key("list").unwrap().pos, Pos { line: 2, col: 1 });
        let items = doc.get("list").unwrap().items().unwrap();
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(items[1].get("k").unwrap().pos, Pos { line: 4, col: 10 });
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse(r#"{"version": 1, "title": "t", "list": [1, "2"]}"#).unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"version": 1, "title": "t", "list": [1, "2"]})
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn deep_nesting_is_a_located_error_not_a_stack_overflow() {
        // Caught by the fuzz seeds: `- - - ...` 100,000 deep overflowed the stack.
        let text = format!("x:\n{}v\n", "- ".repeat(100_000));
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.pos,
            Pos {
                line: 2,
                col: 2 * MAX_DEPTH as u32 - 1
            }
        );
        assert!(err.message.contains("deeper than 128 levels"), "{err:?}");
        // Exactly at the limit is fine (the mapping `x:` is one level).
        let text = format!("x:\n{}v\n", "- ".repeat(MAX_DEPTH - 1));
        assert!(parse(&text).is_ok());
        // Flow style and aliases count the same way.
        assert!(
            parse(&"[".repeat(200))
                .unwrap_err()
                .message
                .contains("deeper")
        );
        // `a` is 1 + 127 levels deep; copied into the list `b` it would be 2 + 127.
        let deep = format!("a: &a {}1{}\n", "[".repeat(127), "]".repeat(127));
        assert!(parse(&deep).is_ok());
        let Err(err) = parse(&format!("{deep}b: [*a]\n")) else {
            panic!("an alias nesting past the limit was accepted");
        };
        assert_eq!(err.pos, Pos { line: 2, col: 5 }, "{err:?}");
    }

    #[test]
    fn billion_laughs_is_refused_at_the_alias() {
        // Caught by the fuzz seeds: nine levels of nine aliases expand to 387 million nodes.
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip("bcdefghi".chars())
        {
            let aliases = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{aliases}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(
            err.message.contains("aliases expand to more than"),
            "{err:?}"
        );
        assert!(err.pos.line <= 8, "{err:?}");
        // Ordinary reuse stays well inside the budget.
        let reuse =
            "p: &p { http: { url: x, timeout: 1s } }\nl: [*p, *p, *p, *p, *p, *p, *p, *p]\n";
        assert_eq!(
            parse(reuse)
                .unwrap()
                .get("l")
                .unwrap()
                .items()
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let doc = parse("a: &x { k: 1 }\nb: *x\n").unwrap();
        assert_eq!(doc.get("b").unwrap().get("k").unwrap().as_str(), Some("1"));
    }
}
