//! A small YAML document tree with line/column positions (yaml-rust2's event parser), so
//! every error about a runtime-policy file can name where it is. Bounded: size, node count
//! (aliases included) and depth are capped.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Largest policy file read.
pub(crate) const MAX_BYTES: usize = 1 << 20;
const MAX_NODES: usize = 100_000;
const MAX_DEPTH: usize = 32;

/// 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

fn pos(m: Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    /// A scalar, as written; `quoted` scalars are never booleans or null.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub(crate) fn str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub(crate) fn bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" => Some(true),
                "false" | "False" | "FALSE" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

pub(crate) struct SyntaxError {
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

fn weight(n: &Node) -> usize {
    match &n.value {
        Value::Seq(s) => 1 + s.iter().map(weight).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(k, v)| weight(k) + weight(v)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos, message });
        }
        self.stack.clear();
    }

    fn push(&mut self, node: Node, anchor: usize) {
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

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let p = pos(mark);
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(p, format!("the document has more than {MAX_NODES} nodes"));
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let value = if style == TScalarStyle::Plain
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar {
                        text,
                        quoted: style != TScalarStyle::Plain,
                    }
                };
                self.push(Node { value, pos: p }, anchor);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _)
                if self.stack.len() >= MAX_DEPTH =>
            {
                let _ = anchor;
                self.fail(p, format!("nesting deeper than {MAX_DEPTH} levels"));
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), p, anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, p, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, p, a)) => self.push(
                    Node {
                        value: Value::Seq(items),
                        pos: p,
                    },
                    a,
                ),
                Some(Frame::Map(entries, _, p, a)) => self.push(
                    Node {
                        value: Value::Map(entries),
                        pos: p,
                    },
                    a,
                ),
                None => {}
            },
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    self.fail(p, "alias to an unknown anchor".into());
                    return;
                };
                self.nodes = self.nodes.saturating_add(weight(&node));
                if self.nodes > MAX_NODES {
                    self.fail(
                        p,
                        format!(
                            "aliases expand to more than {MAX_NODES} nodes; write the values out"
                        ),
                    );
                    return;
                }
                self.push(Node { pos: p, ..node }, 0);
            }
            _ => {}
        }
    }
}

/// Parse one YAML document.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.len() > MAX_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes, over the {MAX_BYTES}-byte limit for runtime policies",
                text.len()
            ),
        });
    }
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        return Err(SyntaxError {
            pos: pos(*e.marker()),
            message: e.info().into(),
        });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    let mut docs = b.docs.into_iter();
    let first = docs.next().unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    });
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            pos: second.pos,
            message:
                "a runtime-policy file holds one YAML document; remove the `---` and what follows"
                    .into(),
        });
    }
    Ok(first)
}
