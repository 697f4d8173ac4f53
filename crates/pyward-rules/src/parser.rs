//! Condition parser: libsinsp's grammar (`userspace/libsinsp/filter/parser.h`).
//!
//! Recursive descent with an explicit nesting counter: more than
//! [`MAX_DEPTH`] levels of parentheses / `not` is an error, never a stack overflow.
//! `and`/`or` chains are parsed iteratively and flattened.

use crate::ast::{Expr, FieldExpr, Modifier, Op, Rhs, TArg, Transformer};

/// Falco sets the parser's max depth to 1000 for rules.
pub(crate) const MAX_DEPTH: usize = 1000;

/// A syntax error at a byte offset of the condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub pos: usize,
    pub message: String,
}

pub(crate) fn parse_condition(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        pos: 0,
    };
    p.skip_ws();
    if p.pos >= p.s.len() {
        return Err(p.err("empty condition"));
    }
    let e = p.parse_or(0)?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.err(&format!(
            "unexpected token after condition: {}",
            p.snippet()
        )));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x08 | 0x0b | 0x0c)
}

fn is_bare_char(b: u8) -> bool {
    !is_blank(b) && !matches!(b, b'(' | b')' | b',' | b'=' | b'"' | b'\'')
}

impl<'a> Parser<'a> {
    fn err(&self, msg: &str) -> ParseError {
        ParseError {
            pos: self.pos,
            message: msg.to_owned(),
        }
    }

    fn snippet(&self) -> String {
        let end = (self.pos + 30).min(self.s.len());
        let mut e = end;
        while e > self.pos && !self.src.is_char_boundary(e) {
            e -= 1;
        }
        let start = if self.src.is_char_boundary(self.pos) {
            self.pos
        } else {
            e
        };
        format!("'{}'", &self.src[start..e])
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_blank(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// Does the input at pos start with `word` followed by a blank, `(`, or end
    /// (when `paren_ok`) ?
    fn at_word(&self, word: &str, paren_ok: bool) -> bool {
        let w = word.as_bytes();
        if self.s.len() < self.pos + w.len() || &self.s[self.pos..self.pos + w.len()] != w {
            return false;
        }
        match self.s.get(self.pos + w.len()) {
            None => true,
            Some(&b) => is_blank(b) || (paren_ok && b == b'('),
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!(
                "exceeded max depth limit of {MAX_DEPTH} nested expressions"
            )));
        }
        let mut items = vec![self.parse_and(depth)?];
        loop {
            self.skip_ws();
            if self.at_word("or", true) {
                self.pos += 2;
                items.push(self.parse_and(depth)?);
            } else {
                break;
            }
        }
        Ok(Expr::or(items))
    }

    fn parse_and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_not(depth)?];
        loop {
            self.skip_ws();
            if self.at_word("and", true) {
                self.pos += 3;
                items.push(self.parse_not(depth)?);
            } else {
                break;
            }
        }
        Ok(Expr::and(items))
    }

    fn parse_not(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut nots = 0usize;
        loop {
            self.skip_ws();
            if self.at_word("not", true) {
                self.pos += 3;
                nots += 1;
                if nots > MAX_DEPTH {
                    return Err(self.err(&format!(
                        "exceeded max depth limit of {MAX_DEPTH} nested expressions"
                    )));
                }
            } else {
                break;
            }
        }
        let mut e = self.parse_check(depth + nots)?;
        for _ in 0..nots {
            e = match e {
                Expr::Not(inner) => *inner,
                e => Expr::Not(Box::new(e)),
            };
        }
        Ok(e)
    }

    fn parse_check(&mut self, depth: usize) -> Result<Expr, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => {
                return Err(
                    self.err("unexpected end of condition: expected a field, a macro or '('")
                )
            }
            Some(b'(') => {
                self.pos += 1;
                let e = self.parse_or(depth + 1)?;
                self.skip_ws();
                if self.peek() != Some(b')') {
                    return Err(self.err(&format!("expected ')' but found {}", self.found())));
                }
                self.pos += 1;
                return Ok(e);
            }
            _ => {}
        }
        let ident = self.read_ident().ok_or_else(|| {
            self.err(&format!(
                "expected a field, a macro or '(' but found {}",
                self.found()
            ))
        })?;
        let lhs = if self.peek() == Some(b'(') && Transformer::from_name(ident).is_some() {
            self.pos = start;
            self.parse_field_expr(depth)?
        } else if ident.contains('.') {
            let arg = self.parse_field_arg()?;
            FieldExpr::Field {
                name: ident.to_owned(),
                arg,
                pos: start,
            }
        } else {
            return Ok(Expr::Macro {
                name: ident.to_owned(),
                pos: start,
            });
        };
        self.skip_ws();
        let op_pos = self.pos;
        let op = self.parse_op().ok_or_else(|| ParseError {
            pos: op_pos,
            message: format!(
                "expected an operator after the field but found {}",
                self.found()
            ),
        })?;
        if op == Op::Exists {
            return Ok(Expr::Check {
                lhs,
                op,
                modifier: None,
                rhs: Rhs::None,
                pos: start,
            });
        }
        self.skip_ws();
        // modifier
        let mut modifier = None;
        if op.is_str_op() {
            for (w, m) in [
                ("oneof", Modifier::OneOf),
                ("anyof", Modifier::AnyOf),
                ("allof", Modifier::AllOf),
            ] {
                if self.at_word(w, true) {
                    self.pos += w.len();
                    modifier = Some(m);
                    self.skip_ws();
                    break;
                }
            }
        }
        let rhs = if modifier.is_some() || op.is_list_op() {
            if self.peek() == Some(b'(') {
                Rhs::List(self.parse_list()?)
            } else if let Some(f) = self.try_rhs_field(depth)? {
                Rhs::Field(f)
            } else if let Some(id) = self.peek_ident() {
                return Err(self.err(&format!("Undefined list '{id}'")));
            } else {
                return Err(self.err(&format!(
                    "expected a list '(...)' after '{}' but found {}",
                    op.name(),
                    self.found()
                )));
            }
        } else if let Some(f) = self.try_rhs_field(depth)? {
            Rhs::Field(f)
        } else {
            Rhs::Value(self.parse_value()?)
        };
        Ok(Expr::Check {
            lhs,
            op,
            modifier,
            rhs,
            pos: start,
        })
    }

    fn found(&self) -> String {
        if self.pos >= self.s.len() {
            "end of condition".into()
        } else {
            self.snippet()
        }
    }

    fn peek_ident(&self) -> Option<&'a str> {
        let mut q = Parser {
            s: self.s,
            src: self.src,
            pos: self.pos,
        };
        q.read_ident()
    }

    /// `[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z0-9_]+)*` — dots allowed in field names.
    fn read_ident(&mut self) -> Option<&'a str> {
        let start = self.pos;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() => self.pos += 1,
            _ => return None,
        }
        while let Some(b) = self.peek() {
            let dot_then_word = b == b'.'
                && self
                    .s
                    .get(self.pos + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
            if b.is_ascii_alphanumeric() || b == b'_' || dot_then_word {
                self.pos += 1;
            } else {
                break;
            }
        }
        Some(&self.src[start..self.pos])
    }

    fn parse_field_arg(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek() != Some(b'[') {
            return Ok(None);
        }
        self.pos += 1;
        let arg = match self.peek() {
            Some(b'"') | Some(b'\'') => self.parse_quoted()?,
            _ => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if is_blank(b) || matches!(b, b'[' | b']' | b'"' | b'\'') {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.err("empty field argument '[]'"));
                }
                self.src[start..self.pos].to_owned()
            }
        };
        if self.peek() != Some(b']') {
            return Err(self.err(&format!(
                "expected ']' to close the field argument but found {}",
                self.found()
            )));
        }
        self.pos += 1;
        Ok(Some(arg))
    }

    /// A field or a transformer application starting at pos.
    fn parse_field_expr(&mut self, depth: usize) -> Result<FieldExpr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!(
                "exceeded max depth limit of {MAX_DEPTH} nested expressions"
            )));
        }
        self.skip_ws();
        let start = self.pos;
        let ident = self.read_ident().ok_or_else(|| {
            self.err(&format!(
                "expected a field or transformer but found {}",
                self.found()
            ))
        })?;
        if self.peek() == Some(b'(') {
            let kind = Transformer::from_name(ident).ok_or_else(|| ParseError {
                pos: start,
                message: format!("unknown transformer '{ident}'"),
            })?;
            self.pos += 1;
            let mut args = Vec::new();
            loop {
                self.skip_ws();
                if self.peek() == Some(b')') && args.is_empty() {
                    break;
                }
                args.push(self.parse_targ(depth + 1)?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => break,
                    _ => {
                        return Err(self.err(&format!(
                            "expected ',' or ')' in transformer arguments but found {}",
                            self.found()
                        )))
                    }
                }
            }
            self.pos += 1; // ')'
            let arg = self.parse_field_arg()?;
            Ok(FieldExpr::Transform {
                kind,
                args,
                arg,
                pos: start,
            })
        } else if ident.contains('.') {
            let arg = self.parse_field_arg()?;
            Ok(FieldExpr::Field {
                name: ident.to_owned(),
                arg,
                pos: start,
            })
        } else {
            Err(ParseError {
                pos: start,
                message: format!("'{ident}' is not a field (fields have a dot, e.g. proc.name)"),
            })
        }
    }

    fn parse_targ(&mut self, depth: usize) -> Result<TArg, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!(
                "exceeded max depth limit of {MAX_DEPTH} nested expressions"
            )));
        }
        self.skip_ws();
        match self.peek() {
            Some(b'"') | Some(b'\'') => Ok(TArg::Str(self.parse_quoted()?)),
            Some(b'(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b')') {
                        break;
                    }
                    items.push(self.parse_targ(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => break,
                        _ => {
                            return Err(self
                                .err(&format!("expected ',' or ')' but found {}", self.found())))
                        }
                    }
                }
                self.pos += 1;
                Ok(TArg::List(items))
            }
            Some(b) if b.is_ascii_alphabetic() => Ok(TArg::Field(self.parse_field_expr(depth)?)),
            Some(b) if b.is_ascii_digit() || b == b'-' || b == b'+' => {
                let start = self.pos;
                while self.peek().is_some_and(is_bare_char) {
                    self.pos += 1;
                }
                Ok(TArg::Str(self.src[start..self.pos].to_owned()))
            }
            _ => Err(self.err(&format!(
                "expected a transformer argument but found {}",
                self.found()
            ))),
        }
    }

    /// `val(field)` or a transformer on the right-hand side.
    fn try_rhs_field(&mut self, depth: usize) -> Result<Option<FieldExpr>, ParseError> {
        let save = self.pos;
        if let Some(id) = self.read_ident() {
            if self.peek() == Some(b'(') {
                if id == "val" {
                    self.pos += 1;
                    let f = self.parse_field_expr(depth + 1)?;
                    if !matches!(f, FieldExpr::Field { .. }) {
                        return Err(ParseError {
                            pos: f.pos(),
                            message: "val() takes a field, not a transformer".into(),
                        });
                    }
                    self.skip_ws();
                    if self.peek() != Some(b')') {
                        return Err(self.err(&format!(
                            "expected ')' to close val( but found {}",
                            self.found()
                        )));
                    }
                    self.pos += 1;
                    return Ok(Some(f));
                }
                if Transformer::from_name(id).is_some() {
                    self.pos = save;
                    return Ok(Some(self.parse_field_expr(depth + 1)?));
                }
            }
        }
        self.pos = save;
        Ok(None)
    }

    fn parse_op(&mut self) -> Option<Op> {
        let two = self.s.get(self.pos..self.pos + 2);
        let sym = match two {
            Some(b"==") => Some((Op::Eq, 2)),
            Some(b"!=") => Some((Op::Ne, 2)),
            Some(b"<=") => Some((Op::Le, 2)),
            Some(b">=") => Some((Op::Ge, 2)),
            _ => match self.peek() {
                Some(b'=') => Some((Op::Eq, 1)),
                Some(b'<') => Some((Op::Lt, 1)),
                Some(b'>') => Some((Op::Gt, 1)),
                _ => None,
            },
        };
        if let Some((op, n)) = sym {
            self.pos += n;
            return Some(op);
        }
        const WORDS: &[(&str, Op, bool)] = &[
            ("contains", Op::Contains, false),
            ("icontains", Op::IContains, false),
            ("bcontains", Op::BContains, false),
            ("startswith", Op::StartsWith, false),
            ("bstartswith", Op::BStartsWith, false),
            ("endswith", Op::EndsWith, false),
            ("glob", Op::Glob, false),
            ("iglob", Op::IGlob, false),
            ("regex", Op::Regex, false),
            ("in", Op::In, true),
            ("intersects", Op::Intersects, true),
            ("pmatch", Op::PMatch, true),
            ("exists", Op::Exists, true),
        ];
        for (w, op, paren_ok) in WORDS {
            if self.at_word(w, *paren_ok) || (*op == Op::Exists && self.at_exists_end()) {
                self.pos += w.len();
                return Some(*op);
            }
        }
        None
    }

    /// `exists` may be directly followed by `)`.
    fn at_exists_end(&self) -> bool {
        self.s.get(self.pos..self.pos + 6) == Some(b"exists")
            && self.s.get(self.pos + 6) == Some(&b')')
    }

    fn parse_list(&mut self) -> Result<Vec<String>, ParseError> {
        // at '('
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b',') => {
                    // tolerate empty items left by the textual expansion of empty lists
                    self.pos += 1;
                    continue;
                }
                None => return Err(self.err("unterminated list: expected ')'")),
                _ => {}
            }
            items.push(self.parse_value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {}
                _ => {
                    return Err(self.err(&format!(
                        "expected ',' or ')' in list but found {}",
                        self.found()
                    )))
                }
            }
        }
    }

    fn parse_value(&mut self) -> Result<String, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') | Some(b'\'') => self.parse_quoted(),
            Some(b) if is_bare_char(b) => {
                let start = self.pos;
                while self.peek().is_some_and(is_bare_char) {
                    self.pos += 1;
                }
                Ok(self.src[start..self.pos].to_owned())
            }
            _ => Err(self.err(&format!("expected a value but found {}", self.found()))),
        }
    }

    fn parse_quoted(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let Some(q) = self.peek() else {
            return Err(self.err("expected a quoted string"));
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ParseError {
                        pos: start,
                        message: "unterminated quoted string".into(),
                    });
                }
                Some(b) if b == q => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(n) = self.s.get(self.pos + 1).copied() else {
                        return Err(ParseError {
                            pos: start,
                            message: "unterminated quoted string".into(),
                        });
                    };
                    let r = match n {
                        b'n' => Some(b'\n'),
                        b't' => Some(b'\t'),
                        b'r' => Some(b'\r'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0c),
                        b'\\' => Some(b'\\'),
                        b'"' => Some(b'"'),
                        b'\'' => Some(b'\''),
                        _ => None,
                    };
                    match r {
                        Some(c) => {
                            out.push(c);
                            self.pos += 2;
                        }
                        None => {
                            out.push(b'\\');
                            self.pos += 1;
                        }
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| ParseError {
            pos: start,
            message: "quoted string is not valid UTF-8".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        match parse_condition(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        // a or b and not c  ==  a or (b and (not c))
        let e = p("a or b and not c");
        let Expr::Or(v) = e else {
            panic!("or expected")
        };
        assert_eq!(v.len(), 2);
        assert!(matches!(&v[1], Expr::And(w) if matches!(w[1], Expr::Not(_))));
    }

    #[test]
    fn bare_values_and_ops() {
        let e = p("evt.dir=< and fd.name startswith /etc and proc.name in (a, \"b c\", 'd')");
        let Expr::And(v) = e else { panic!() };
        assert!(matches!(&v[0], Expr::Check { op: Op::Eq, rhs: Rhs::Value(x), .. } if x == "<"));
        assert!(
            matches!(&v[2], Expr::Check { op: Op::In, rhs: Rhs::List(l), .. } if l == &vec!["a".to_string(), "b c".into(), "d".into()])
        );
    }

    #[test]
    fn not_paren_and_in_paren() {
        p("not(proc.name in(a,b))");
        p("proc.name in ()");
        p("proc.name exists");
        p("(proc.name exists)");
        p("proc.name contains anyof (a, b)");
        p("proc.name = val(proc.pname)");
        p("tolower(proc.name) = bash");
        p("proc.name = toupper(proc.pname)");
        p("b64(toupper(join(\",\", (proc.name, proc.pname)))) = x");
        p("getopt(proc.args, \"nt:\")[t] = 1");
        p("proc.aname[2] = bash and proc.env[HOME] = /root and container.label['a b'] = x");
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "(",
            "proc.name =",
            "proc.name in foo",
            "proc.name = 'abc",
            "a and",
            "proc.name bogus x",
            "val(proc.name) = x",
            "proc.name )",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        let e = parse_condition("proc.name in foo").unwrap_err();
        assert!(e.message.contains("Undefined list 'foo'"));
    }

    #[test]
    fn deep_nesting_is_an_error() {
        // The loader parses on a thread with a 256 MiB stack; do the same here
        // (debug-build frames are large).
        let h = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(deep_nesting_body)
            .unwrap();
        h.join().unwrap();
    }

    fn deep_nesting_body() {
        let s = format!("{}proc.name=a{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = parse_condition(&s).unwrap_err();
        assert!(e.message.contains("depth"), "{}", e.message);
        let s = format!("{}proc.name=a", "not ".repeat(100_000));
        assert!(parse_condition(&s).is_err());
        // 999 is fine
        let s = format!("{}proc.name=a{}", "(".repeat(999), ")".repeat(999));
        p(&s);
    }
}
