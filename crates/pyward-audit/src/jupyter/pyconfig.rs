//! Static reading of Jupyter configuration files (`.py` and `.json`), never by running them.
//!
//! A `.py` config is a Python program; pyward only recognises top-level-looking assignments of
//! the form `c.Class.trait = <literal>` (strings incl. raw/triple-quoted and implicit
//! concatenation, booleans, numbers, `None`, lists/tuples of those). Anything else on the right
//! (`os.environ.get(...)`, f-strings, arithmetic) is kept as [`Value::Unknown`] so checks can say
//! "cannot tell" instead of guessing.

use serde::Serialize;

/// Largest config file read (bytes); bigger files are reported and skipped.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Keys of a JSON config whose line is looked up (others get their class's line).
const MAX_LINE_LOOKUPS: usize = 512;
/// Longest raw text kept for an unknown value.
const MAX_RAW: usize = 200;

/// A configuration value as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    None,
    List(Vec<Value>),
    /// An expression pyward does not evaluate (kept as text, shortened).
    Unknown(String),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }
    /// Python-ish rendering for evidence (secrets are redacted by the caller, not here).
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::None => "None".into(),
            Value::List(v) => {
                format!(
                    "[{}]",
                    v.iter().map(Value::display).collect::<Vec<_>>().join(", ")
                )
            }
            Value::Unknown(raw) => format!("<not evaluated: {raw}>"),
        }
    }
}

/// One `c.Class.trait = value` found in a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub class: String,
    pub trait_name: String,
    pub value: Value,
    /// 1-based line of the assignment.
    pub line: u32,
}

/// Parse a `.py` config statically. Never fails: unrecognised statements are skipped.
pub fn parse_py(text: &str) -> Vec<Assignment> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        c: &chars,
        i: 0,
        line: 1,
        depth: 0,
    };
    let mut out = Vec::new();
    while p.i < chars.len() {
        p.skip_inline_ws();
        let start_line = p.line;
        if let Some((class, trait_name)) = p.try_target() {
            let value = p.value_expr();
            out.push(Assignment {
                class,
                trait_name,
                value,
                line: start_line,
            });
        }
        p.skip_logical_line();
    }
    out
}

struct Parser<'a> {
    c: &'a [char],
    i: usize,
    line: u32,
    /// Nesting of lists being parsed (bounded, so hostile input cannot overflow the stack).
    depth: usize,
}

/// Deepest list nesting parsed; deeper values are Unknown.
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn peek_at(&self, k: usize) -> Option<char> {
        self.c.get(self.i + k).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let ch = self.c.get(self.i).copied()?;
        self.i += 1;
        if ch == '\n' {
            self.line += 1;
        }
        Some(ch)
    }
    fn skip_inline_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\x0c')) {
            self.bump();
        }
    }
    /// Whitespace including newlines and comments (inside brackets).
    fn skip_ws_all(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n' | '\x0c') => {
                    self.bump();
                }
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                Some('\\') if self.peek_at(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }
    fn ident(&mut self) -> Option<String> {
        let first = self.peek()?;
        if !(first.is_alphabetic() || first == '_') {
            return None;
        }
        let mut s = String::new();
        while let Some(ch) = self.peek() {
            if ch.is_alphanumeric() || ch == '_' {
                s.push(ch);
                self.bump();
            } else {
                break;
            }
        }
        Some(s)
    }
    /// `c.Class.trait =` (not `==`); on failure the position is restored.
    fn try_target(&mut self) -> Option<(String, String)> {
        let (save_i, save_line) = (self.i, self.line);
        let r = (|| {
            if self.ident()? != "c" || self.bump()? != '.' {
                return None;
            }
            let class = self.ident()?;
            if self.bump()? != '.' {
                return None;
            }
            let trait_name = self.ident()?;
            self.skip_inline_ws();
            if self.bump()? != '=' || self.peek() == Some('=') {
                return None;
            }
            self.skip_inline_ws();
            Some((class, trait_name))
        })();
        if r.is_none() {
            self.i = save_i;
            self.line = save_line;
        }
        r
    }
    /// The right-hand side: a literal, or Unknown with the raw text up to the end of the line.
    fn value_expr(&mut self) -> Value {
        let start = self.i;
        let v = self.literal();
        self.skip_inline_ws();
        let ends_here = matches!(self.peek(), None | Some('\n' | '#' | ';'));
        match v {
            Some(v) if ends_here => v,
            _ => {
                self.i = start;
                let mut raw = String::new();
                // Raw text up to the end of the logical line; skip_logical_line moves on.
                let mut j = start;
                while let Some(&ch) = self.c.get(j) {
                    if ch == '\n' || raw.chars().count() >= MAX_RAW {
                        break;
                    }
                    raw.push(ch);
                    j += 1;
                }
                Value::Unknown(raw.trim().to_string())
            }
        }
    }
    fn literal(&mut self) -> Option<Value> {
        let ch = self.peek()?;
        match ch {
            '[' | '(' => self.sequence(),
            '{' => None,
            '-' | '+' | '0'..='9' | '.' => self.number(),
            _ if self.string_start().is_some() => {
                // Implicit concatenation: 'a' "b"
                let mut s = self.string()?;
                loop {
                    let (si, sl) = (self.i, self.line);
                    self.skip_inline_ws();
                    if self.string_start().is_some() {
                        s.push_str(&self.string()?);
                    } else {
                        self.i = si;
                        self.line = sl;
                        break;
                    }
                }
                Some(Value::Str(s))
            }
            _ => {
                let id = self.ident()?;
                match id.as_str() {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::None),
                    _ => None,
                }
            }
        }
    }
    fn number(&mut self) -> Option<Value> {
        let mut s = String::new();
        if let Some(sign @ ('-' | '+')) = self.peek() {
            s.push(sign);
            self.bump();
        }
        while let Some(ch) = self.peek() {
            if ch.is_ascii_digit() || ch == '.' || ch == '_' || ch == 'e' || ch == 'E' {
                if ch != '_' {
                    s.push(ch);
                }
                self.bump();
            } else {
                break;
            }
        }
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Int(i));
        }
        s.parse::<f64>().ok().map(Value::Float)
    }
    fn sequence(&mut self) -> Option<Value> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let r = self.sequence_inner();
        self.depth -= 1;
        r
    }
    fn sequence_inner(&mut self) -> Option<Value> {
        let close = if self.bump()? == '[' { ']' } else { ')' };
        let mut items = Vec::new();
        loop {
            self.skip_ws_all();
            if self.peek()? == close {
                self.bump();
                return Some(Value::List(items));
            }
            if items.len() > 10_000 {
                return None;
            }
            items.push(self.literal()?);
            self.skip_ws_all();
            match self.bump()? {
                ',' => continue,
                ch if ch == close => return Some(Value::List(items)),
                _ => return None,
            }
        }
    }
    /// (prefix length, is_raw, is_fstring) when a string literal starts here.
    fn string_start(&self) -> Option<(usize, bool, bool)> {
        let mut k = 0;
        let (mut raw, mut f) = (false, false);
        while let Some(ch) = self.peek_at(k) {
            match ch.to_ascii_lowercase() {
                'r' => raw = true,
                'f' => f = true,
                'b' | 'u' => {}
                '\'' | '"' => return Some((k, raw, f)),
                _ => return None,
            }
            k += 1;
            if k > 2 {
                return None;
            }
        }
        None
    }
    fn string(&mut self) -> Option<String> {
        let (prefix, raw, fstring) = self.string_start()?;
        for _ in 0..prefix {
            self.bump();
        }
        let q = self.bump()?;
        let triple = self.peek() == Some(q) && self.peek_at(1) == Some(q);
        if triple {
            self.bump();
            self.bump();
        }
        let mut s = String::new();
        loop {
            let ch = self.bump()?;
            if ch == q {
                if !triple {
                    break;
                }
                if self.peek() == Some(q) && self.peek_at(1) == Some(q) {
                    self.bump();
                    self.bump();
                    break;
                }
                s.push(ch);
                continue;
            }
            if ch == '\n' && !triple {
                return None;
            }
            if ch == '\\' {
                let next = self.bump()?;
                if raw {
                    s.push('\\');
                    s.push(next);
                    continue;
                }
                match next {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    '0' => s.push('\0'),
                    '\\' | '\'' | '"' => s.push(next),
                    '\n' => {}
                    other => {
                        s.push('\\');
                        s.push(other);
                    }
                }
                continue;
            }
            s.push(ch);
        }
        if fstring && s.contains('{') {
            return None;
        }
        Some(s)
    }
    /// Move past the rest of the logical line, respecting strings, brackets and continuations.
    fn skip_logical_line(&mut self) {
        let mut depth: usize = 0;
        while let Some(ch) = self.peek() {
            match ch {
                '\n' if depth == 0 => {
                    self.bump();
                    return;
                }
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                '\\' => {
                    self.bump();
                    self.bump();
                }
                '(' | '[' | '{' => {
                    depth = depth.saturating_add(1);
                    self.bump();
                }
                ')' | ']' | '}' => {
                    depth = depth.saturating_sub(1);
                    self.bump();
                }
                '\'' | '"' => {
                    let (si, sl) = (self.i, self.line);
                    if self.string().is_none() {
                        // Unterminated or f-string: step over the quote and go on.
                        self.i = si;
                        self.line = sl;
                        self.bump();
                    }
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

/// Parse a `.json` config (`{"ServerApp": {"token": ""}}`). Lines are found by searching the
/// text for the key after its class. Errors say what is wrong with the JSON.
pub fn parse_json(text: &str) -> Result<Vec<Assignment>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("not a JSON object of classes")?;
    let mut out = Vec::new();
    // Line lookups search the text; bounded so a huge file cannot make this quadratic.
    let mut lookups = 0usize;
    for (class, traits) in obj {
        let Some(traits) = traits.as_object() else {
            continue;
        };
        let class_pos = text.find(&format!("\"{class}\"")).unwrap_or(0);
        for (name, v) in traits {
            let needle = format!("\"{name}\"");
            lookups += 1;
            let pos = if lookups > MAX_LINE_LOOKUPS {
                class_pos
            } else {
                text.get(class_pos..)
                    .and_then(|rest| rest.find(&needle))
                    .map(|p| p + class_pos)
                    .unwrap_or(class_pos)
            };
            let line = text
                .get(..pos)
                .map(|t| t.matches('\n').count() as u32 + 1)
                .unwrap_or(1);
            out.push(Assignment {
                class: class.clone(),
                trait_name: name.clone(),
                value: json_value(v),
                line,
            });
        }
    }
    Ok(out)
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Null => Value::None,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::Array(a) => Value::List(a.iter().map(json_value).collect()),
        serde_json::Value::Object(_) => {
            let mut raw = v.to_string();
            if raw.len() > MAX_RAW {
                let mut cut = MAX_RAW;
                while !raw.is_char_boundary(cut) {
                    cut -= 1;
                }
                raw.truncate(cut);
            }
            Value::Unknown(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Vec<(String, Value, u32)> {
        parse_py(src)
            .into_iter()
            .map(|a| (format!("{}.{}", a.class, a.trait_name), a.value, a.line))
            .collect()
    }

    #[test]
    fn literals() {
        let src = "# c.ServerApp.token = 'x'\nc = get_config()  #noqa\nc.ServerApp.token = ''\nc.NotebookApp.ip = \"*\"\nc.ServerApp.port = 8889\nc.ServerApp.allow_root = True\nc.ServerApp.certfile = r'C:\\x\\y'\nc.ServerApp.root_dir = '''/srv\n'''\nc.ServerApp.x = ['a', \"b\",\n  'c']  # comment\nc.ServerApp.token = os.environ.get('T', '')\nc.ServerApp.y = 'a' 'b'\n";
        let v = one(src);
        assert_eq!(
            v[0],
            ("ServerApp.token".into(), Value::Str(String::new()), 3)
        );
        assert_eq!(v[1], ("NotebookApp.ip".into(), Value::Str("*".into()), 4));
        assert_eq!(v[2].1, Value::Int(8889));
        assert_eq!(v[3].1, Value::Bool(true));
        assert_eq!(v[4].1, Value::Str("C:\\x\\y".into()));
        assert_eq!(v[5].1, Value::Str("/srv\n".into()));
        assert_eq!(
            v[6].1,
            Value::List(vec![
                Value::Str("a".into()),
                Value::Str("b".into()),
                Value::Str("c".into())
            ])
        );
        assert!(v[7].1.is_unknown());
        assert_eq!(v[7].2, 12);
        assert_eq!(v[8].1, Value::Str("ab".into()));
        assert_eq!(v.len(), 9);
    }

    #[test]
    fn docstring_is_not_an_assignment() {
        let v = one("\"\"\"\nc.ServerApp.token = ''\n\"\"\"\nc.ServerApp.ip = '0.0.0.0'\n");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "ServerApp.ip");
        assert_eq!(v[0].2, 4);
    }

    #[test]
    fn garbage_does_not_panic() {
        for src in [
            "c.",
            "c.A.b = '",
            "c.A.b = [1, 2",
            "c.A.b = r'\\",
            "\"\"\"",
            "c.A.b == ''",
            "c.A.b = f'{x}'",
        ] {
            let _ = parse_py(src);
        }
        assert!(parse_py("c.A.b == ''").is_empty());
        let deep = format!(
            "c.A.b = {}{}\nc.A.c = 1\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let v = parse_py(&deep);
        assert!(v[0].value.is_unknown());
        assert_eq!(v[1].value, Value::Int(1));
        assert!(parse_py("c.A.b = f'{x}'")[0].value.is_unknown());
    }

    #[test]
    fn json_lines() {
        let a =
            parse_json("{\n \"ServerApp\": {\n  \"ip\": \"0.0.0.0\",\n  \"token\": \"\"\n }\n}")
                .unwrap();
        let tok = a.iter().find(|a| a.trait_name == "token").unwrap();
        assert_eq!((tok.line, &tok.value), (4, &Value::Str(String::new())));
        assert!(parse_json("[1]").is_err());
        assert!(parse_json("{").is_err());
    }
}
