//! A small document tree with positions, built from YAML (yaml-rust2's event parser) or JSON,
//! so every error about a policy can name the line and column it is about.
//!
//! Hostile input stays bounded: the text is size-capped before parsing, aliases are expanded
//! against a node budget (a "billion laughs" alias bomb is an error at the alias that blows the
//! budget, not a memory explosion), and nesting depth is capped.

use std::fmt;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Largest policy file read.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;
/// Most nodes a document may expand to (aliases included).
pub const MAX_NODES: usize = 200_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// 1-based line and column in the policy file; `0:0` when unknown (a JSON document that the
/// YAML reader could not position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl Pos {
    fn from_marker(m: Marker) -> Pos {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar, as written (YAML plain scalars keep their text; typing is done by the reader).
    Str(String),
    /// A quoted YAML scalar or JSON string: never typed as a number or boolean.
    Quoted(String),
    Num(String),
    Bool(bool),
    Seq(Vec<Node>),
    /// Keys in document order.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    /// The scalar text of a string, number or boolean node.
    pub fn scalar(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Quoted(s) | Value::Num(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// What kind of value this is, for messages ("expected a list, found a string").
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Str(_) | Value::Quoted(_) => "a string",
            Value::Num(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Number of nodes in this subtree.
    fn weight(&self) -> usize {
        match &self.value {
            Value::Seq(s) => 1 + s.iter().map(Node::weight).sum::<usize>(),
            Value::Map(m) => {
                1 + m
                    .iter()
                    .map(|(k, v)| k.weight() + v.weight())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
}

/// A syntax problem, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    docs: Vec<Node>,
    nodes: usize,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos, message });
        }
        self.stack.clear();
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

fn scalar_value(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::Quoted(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        t if looks_numeric(t) => Value::Num(text),
        _ => Value::Str(text),
    }
}

fn looks_numeric(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E')
        && t.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && t.parse::<f64>().is_ok()
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(mark);
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(pos, format!("the document has more than {MAX_NODES} nodes"));
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let node = Node {
                    value: scalar_value(text, style),
                    pos,
                };
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                self.stack.push(Frame::Seq(Vec::new(), pos, anchor));
            }
            Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                self.stack.push(Frame::Map(Vec::new(), None, pos, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, p, anchor)) => self.push_value(
                    Node {
                        value: Value::Seq(items),
                        pos: p,
                    },
                    anchor,
                ),
                Some(Frame::Map(entries, _, p, anchor)) => self.push_value(
                    Node {
                        value: Value::Map(entries),
                        pos: p,
                    },
                    anchor,
                ),
                None => {}
            },
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    self.fail(pos, "alias to an unknown anchor".into());
                    return;
                };
                // Expanding an alias copies its whole subtree: charge it to the budget first.
                self.nodes = self.nodes.saturating_add(node.weight());
                if self.nodes > MAX_NODES {
                    self.fail(
                        pos,
                        format!(
                            "aliases expand to more than {MAX_NODES} nodes (an alias bomb?); \
                             write the values out instead of nesting aliases"
                        ),
                    );
                    return;
                }
                self.push_value(Node { pos, ..node }, 0);
            }
            _ => {}
        }
    }
}

/// Parse YAML text (a single document) into a [`Node`].
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    check_size(text)?;
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(SyntaxError {
            pos: Pos::from_marker(*e.marker()),
            message: e.info().into(),
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut docs = builder.docs.into_iter();
    let first = docs.next().unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    });
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            pos: second.pos,
            message: "a policy file holds one YAML document; remove the `---` and what follows"
                .into(),
        });
    }
    Ok(first)
}

fn check_size(text: &str) -> Result<(), SyntaxError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes, over the {MAX_POLICY_BYTES}-byte limit for policies",
                text.len()
            ),
        });
    }
    Ok(())
}

/// Parse JSON text. Syntax is checked by serde_json (exact line/column); positions of values
/// come from reading the same text as YAML (JSON is YAML's flow syntax), falling back to an
/// unpositioned tree when the YAML reader disagrees.
pub fn parse_json(text: &str) -> Result<Node, SyntaxError> {
    check_size(text)?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| SyntaxError {
        pos: Pos {
            line: e.line(),
            col: e.column(),
        },
        message: e.to_string(),
    })?;
    if let Ok(node) = parse_yaml(text) {
        if node.as_map().is_some() {
            return Ok(node);
        }
    }
    let mut budget = MAX_NODES;
    from_json(&value, 0, &mut budget).ok_or_else(|| SyntaxError {
        pos: Pos::default(),
        message: format!(
            "the document is deeper than {MAX_DEPTH} levels or has over {MAX_NODES} values"
        ),
    })
}

fn from_json(v: &serde_json::Value, depth: usize, budget: &mut usize) -> Option<Node> {
    *budget = budget.checked_sub(1)?;
    if depth > MAX_DEPTH {
        return None;
    }
    let value = match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Num(n.to_string()),
        serde_json::Value::String(s) => Value::Quoted(s.clone()),
        serde_json::Value::Array(a) => Value::Seq(
            a.iter()
                .map(|x| from_json(x, depth + 1, budget))
                .collect::<Option<Vec<_>>>()?,
        ),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, x)| {
                    Some((
                        Node {
                            value: Value::Quoted(k.clone()),
                            pos: Pos::default(),
                        },
                        from_json(x, depth + 1, budget)?,
                    ))
                })
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    Some(Node {
        value,
        pos: Pos::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse_yaml("a: 1\nb:\n  - x\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(m[1].1.as_seq().unwrap()[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(m[0].1.value, Value::Num("1".into()));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!(
                "a{i}: &a{i} [{p},{p},{p},{p},{p},{p},{p},{p},{p},{p}]\n",
                p = prev
            ));
        }
        let err = parse_yaml(&doc).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
        assert!(err.pos.line > 1);
    }

    #[test]
    fn json_gets_positions() {
        let n =
            parse_json("{\n  \"id\": \"x\",\n  \"rules\": [ {\"gate\": \"files\"} ]\n}").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m[1].1.pos.line, 3);
        assert_eq!(m[0].1.value, Value::Quoted("x".into()));
        let e = parse_json("{\n \"a\": ,}").unwrap_err();
        assert_eq!(e.pos.line, 2);
    }
}
