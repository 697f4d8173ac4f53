//! Output templates (`%field`, `%field[arg]`) and Falco's JSON alert.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::Event;
use crate::fields::{self, Field, FieldType, Kind, Val};
use crate::priority::Priority;

/// A typed value of `output_fields`: string, number, bool, or null (`<NA>`).
pub type OutputValue = serde_json::Value;

#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Text(String),
    Field(Field),
}

/// A compiled output template.
#[derive(Clone, Debug, Default)]
pub(crate) struct Template {
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Parse `%field` / `%field[arg]` placeholders. Unknown fields are errors.
    pub(crate) fn parse(s: &str) -> Result<Template, String> {
        let b = s.as_bytes();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        let mut last = 0;
        while i < b.len() {
            if b[i] != b'%' {
                i += 1;
                continue;
            }
            // name: [a-zA-Z0-9_.]+ starting with a letter
            let mut j = i + 1;
            let paren = b.get(j) == Some(&b'(');
            if paren {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            // a trailing dot is punctuation, not part of the name
            while j > start && b[j - 1] == b'.' {
                j -= 1;
            }
            if j == start || !b[start].is_ascii_alphabetic() || !s[start..j].contains('.') {
                i += 1;
                continue;
            }
            let name = &s[start..j];
            let mut arg = None;
            if b.get(j) == Some(&b'[') {
                if let Some(end) = s[j + 1..].find(']') {
                    arg = Some(&s[j + 1..j + 1 + end]);
                    j = j + 1 + end + 1;
                }
            }
            if paren {
                if b.get(j) != Some(&b')') {
                    return Err(format!("unterminated '%(' in output near '{}'", &s[i..j]));
                }
                j += 1;
            }
            let field = fields::resolve(name, arg, false)
                .map_err(|m| format!("invalid output field: {m}"))?;
            text.push_str(&s[last..i]);
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            let mut field = field;
            if paren {
                field.text = match arg {
                    Some(a) => format!("{name}[{a}]"),
                    None => name.to_owned(),
                };
            }
            pieces.push(Piece::Field(field));
            i = j;
            last = j;
        }
        text.push_str(&s[last..]);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = &Field> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field(f) => Some(f),
            Piece::Text(_) => None,
        })
    }

    /// Render as text; missing values print `<NA>`.
    pub(crate) fn render<E: Event + ?Sized>(&self, e: &E) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&text_value(f, e)),
            }
        }
        out
    }
}

fn text_value<E: Event + ?Sized>(f: &Field, e: &E) -> String {
    match fields::extract(&f.kind, e) {
        None => "<NA>".to_owned(),
        Some(v) => match (f.ty, &v) {
            (FieldType::AbsTime, Val::Uint(ns)) if matches!(f.kind, Kind::EvtTime) => {
                fields::time_text(*ns)
            }
            (FieldType::AbsTime, Val::Uint(ns)) => fields::time_iso(*ns),
            (FieldType::Bytes, Val::Bytes(b)) => escape_bytes(b),
            _ => sanitize(&v.to_text()),
        },
    }
}

fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if c.is_ascii_graphic() || c == b' ' {
            s.push(char::from(c));
        } else {
            s.push('.');
        }
    }
    s
}

/// Falco escapes control characters in output.
fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Typed JSON value for `output_fields`.
pub(crate) fn json_value<E: Event + ?Sized>(f: &Field, e: &E) -> OutputValue {
    let Some(v) = fields::extract(&f.kind, e) else {
        return OutputValue::Null;
    };
    match v {
        Val::Int(i) => OutputValue::from(i),
        Val::Uint(u) if matches!(f.ty, FieldType::AbsTime) && !matches!(f.kind, Kind::EvtTime) => {
            OutputValue::from(fields::time_iso(u))
        }
        Val::Uint(u) => OutputValue::from(u),
        Val::Bool(b) => OutputValue::from(b),
        Val::Ip(ip) => OutputValue::from(ip.to_string()),
        Val::Bytes(b) => OutputValue::from(escape_bytes(&b)),
        Val::Str(s) => OutputValue::from(s.into_owned()),
    }
}

/// One alert in Falco's JSON shape (keys alphabetical, as nlohmann::json prints them),
/// accepted by falcosidekick's `POST /`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    /// Machine host name.
    pub hostname: String,
    /// `"<HH:MM:SS.ns>: <Priority> <rule output>"`.
    pub output: String,
    /// One key per `%field` of the output, named as written, typed values, `null` for `<NA>`;
    /// plus `evt.time` (integer ns).
    pub output_fields: BTreeMap<String, OutputValue>,
    /// Rule priority in title case.
    pub priority: Priority,
    /// Rule name.
    pub rule: String,
    /// Event source (`syscall`).
    pub source: String,
    /// Rule tags, sorted.
    pub tags: Vec<String>,
    /// Event time, `2026-07-30T13:53:31.726060287Z`.
    pub time: String,
}
