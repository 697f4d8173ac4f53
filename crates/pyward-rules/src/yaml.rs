//! YAML → a small node tree with line/column positions. Shared with pyward-detect, which
//! reads its `- detector:` items from the same rules files, so both parse them identically.
//!
//! Built on yaml-rust2's event parser (iterative, with a flow-nesting limit). Aliases
//! are expanded here under a node budget, so an alias bomb ("billion laughs") is an
//! error instead of gigabytes of memory.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most nodes a file may expand to (aliases included).
pub const MAX_NODES: usize = 2_000_000;
/// Deepest block/flow nesting accepted.
const MAX_NESTING: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        // yaml-rust2 lines are 1-based, columns 0-based.
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A scalar: text, whether it was quoted / block (so never null/bool/number).
    Scalar {
        text: String,
        plain: bool,
        block: bool,
        pos: Pos,
    },
    Seq {
        items: Vec<Node>,
        pos: Pos,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pos: Pos,
    },
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Scalar { pos, .. } | Node::Seq { pos, .. } | Node::Map { pos, .. } => *pos,
        }
    }

    /// Plain scalar `~`, `null`, empty.
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true, .. } if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Scalar {
                text, plain: true, ..
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Node::Scalar { .. } if self.is_null() => "null",
            Node::Scalar { .. } => "a scalar",
            Node::Seq { .. } => "a sequence",
            Node::Map { .. } => "a mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
    },
}

fn count_nodes(n: &Node) -> usize {
    // iterative to avoid deep recursion
    let mut stack = vec![n];
    let mut c = 0usize;
    while let Some(n) = stack.pop() {
        c += 1;
        match n {
            Node::Scalar { .. } => {}
            Node::Seq { items, .. } => stack.extend(items.iter()),
            Node::Map { entries, .. } => {
                for (k, v) in entries {
                    stack.push(k);
                    stack.push(v);
                }
            }
        }
    }
    c
}

/// Parse every document of `src`.
///
/// libyaml/yaml-cpp (what Falco uses) accept a flow collection whose closing `]`
/// or `}` sits on its own line at the parent's indentation, which yaml-rust2
/// rejects as "invalid indentation" (the upstream sandbox rules have such lists).
/// On that error, when the offending line holds only closing brackets, we indent
/// that line further (meaning unchanged) and parse again, a bounded number of times.
pub fn parse_documents(src: &str) -> Result<Vec<Node>, YamlError> {
    let mut text = std::borrow::Cow::Borrowed(src);
    let mut retries = 0;
    loop {
        match parse_documents_strict(&text) {
            Err(e) if e.message.ends_with("invalid indentation") && retries < 256 => {
                let Some(fixed) = indent_closer_line(&text, e.pos.line) else {
                    return Err(e);
                };
                text = std::borrow::Cow::Owned(fixed);
                retries += 1;
            }
            r => return r,
        }
    }
}

fn indent_closer_line(text: &str, line: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut found = false;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let t = l.trim();
            if t.is_empty() || !t.chars().all(|c| matches!(c, ']' | '}' | ',' | ' ')) {
                return None;
            }
            out.push_str(&" ".repeat(64));
            found = true;
        }
        out.push_str(l);
    }
    found.then_some(out)
}

fn parse_documents_strict(src: &str) -> Result<Vec<Node>, YamlError> {
    let mut parser = Parser::new_from_str(src);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut budget = MAX_NODES;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| YamlError {
            pos: Pos::from(*e.marker()),
            message: format!("malformed YAML: {}", e.info()),
        })?;
        let pos = Pos::from(mark);
        let done: Option<Node> = match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart => {
                anchors.clear();
                None
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(YamlError {
                        pos,
                        message: format!("YAML nested deeper than {MAX_NESTING} levels"),
                    });
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(YamlError {
                        pos,
                        message: format!("YAML nested deeper than {MAX_NESTING} levels"),
                    });
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    pos,
                    anchor,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => {
                    let n = Node::Seq { items, pos };
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    Some(n)
                }
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "malformed YAML: unbalanced sequence".into(),
                    })
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries,
                    pos,
                    anchor,
                    ..
                }) => {
                    let n = Node::Map { entries, pos };
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    Some(n)
                }
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "malformed YAML: unbalanced mapping".into(),
                    })
                }
            },
            Event::Scalar(text, style, anchor, _) => {
                if budget == 0 {
                    return Err(YamlError {
                        pos,
                        message: format!("YAML has more than {MAX_NODES} nodes"),
                    });
                }
                budget -= 1;
                let n = Node::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                    block: matches!(style, TScalarStyle::Literal | TScalarStyle::Folded),
                    pos,
                };
                if anchor > 0 {
                    anchors.insert(anchor, n.clone());
                }
                Some(n)
            }
            Event::Alias(id) => {
                let Some(n) = anchors.get(&id) else {
                    return Err(YamlError {
                        pos,
                        message: "malformed YAML: alias to an unknown anchor".into(),
                    });
                };
                let c = count_nodes(n);
                if c > budget {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "YAML alias expansion exceeds {MAX_NODES} nodes (alias bomb?)"
                        ),
                    });
                }
                budget -= c;
                Some(n.clone())
            }
        };
        if let Some(node) = done {
            if let Node::Seq { .. } | Node::Map { .. } = node {
                if budget == 0 {
                    return Err(YamlError {
                        pos,
                        message: format!("YAML has more than {MAX_NODES} nodes"),
                    });
                }
                budget -= 1;
            }
            match stack.last_mut() {
                None => docs.push(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let d = parse_documents("- rule: a\n  condition: x\n").unwrap();
        let Node::Seq { items, .. } = &d[0] else {
            panic!()
        };
        let c = items[0].get("condition").unwrap();
        assert_eq!(c.pos(), Pos { line: 2, col: 14 });
    }

    #[test]
    fn alias_bomb() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let e = parse_documents(&s).unwrap_err();
        assert!(e.message.contains("alias"), "{}", e.message);
    }

    #[test]
    fn malformed() {
        assert!(parse_documents("- a: [b\n- c").is_err());
        assert!(parse_documents(&"[".repeat(10_000)).is_err());
    }
}
