//! Facts extracted from one Python source: calls with alias-resolved names, string constants,
//! decoded layers. Two extractors produce them: a tree-sitter walk (tolerates syntax errors and
//! Python 2) and a token/line fallback for files the parser cannot take.

use crate::decode::{self, Budget};
use std::collections::HashMap;
use std::time::Instant;
use tree_sitter::{Node, TreeCursor};

/// One call site.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// Qualified name after alias resolution (`os.system`, `base64.b64decode`), or `?.attr` for
    /// a method on an unknown object.
    pub name: String,
    pub line: u32,
    /// The call's source text, shortened.
    pub snippet: String,
    /// At module level (runs at import), not inside a function or class body.
    pub top_level: bool,
    /// Resolved names of calls nested in the arguments.
    pub inner: Vec<String>,
    /// Constant strings among the arguments (decoded when statically decodable).
    pub strs: Vec<String>,
    /// Keyword arguments: name and source text of the value.
    pub kwargs: Vec<(String, String)>,
    /// The argument list's source text, shortened.
    pub args_text: String,
    /// Reached through reflection (`getattr(m, 'x')`, `__import__('m')`).
    pub reflective: bool,
    /// For exec/eval/compile: the decode chain that produced the argument, if any.
    pub decoded_arg: Option<usize>,
    /// Decoded-layer index (0 = the file itself).
    pub layer: usize,
}

/// A statically decoded value.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub line: u32,
    /// Decoding steps, outermost last (`base64`, `zlib`).
    pub chain: Vec<&'static str>,
    pub text: String,
    /// Layer the decoded value was found in.
    pub layer: usize,
}

/// Everything the rules look at.
#[derive(Debug, Default)]
pub struct Facts {
    pub calls: Vec<Call>,
    /// (line, layer, text) of every string constant.
    pub strings: Vec<(u32, usize, String)>,
    pub decoded: Vec<Decoded>,
    /// Lines with `^` inside a loop or comprehension (XOR ciphers).
    pub xor_in_loop: Vec<u32>,
    pub notes: Vec<String>,
    /// Whether the parser found syntax errors (the walk still ran, with recovery).
    pub syntax_errors: bool,
}

/// Limits for one file's extraction.
pub struct Limits {
    pub deadline: Instant,
    pub max_depth: usize,
    pub max_layers: usize,
    pub max_strings: usize,
}

type Val = (Vec<u8>, Vec<&'static str>);

/// Decoder a call name stands for.
fn decoder_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "base64.b64decode"
        | "base64.standard_b64decode"
        | "base64.urlsafe_b64decode"
        | "base64.decodebytes"
        | "base64.decodestring"
        | "binascii.a2b_base64" => "base64",
        "base64.b32decode" => "base32",
        "base64.b16decode" | "binascii.unhexlify" | "binascii.a2b_hex" | "bytes.fromhex"
        | "bytearray.fromhex" => "hex",
        "zlib.decompress" | "gzip.decompress" => "zlib",
        "bz2.decompress" => "bz2",
        "lzma.decompress" => "lzma",
        _ => return None,
    })
}

fn is_exec(name: &str) -> bool {
    matches!(
        name,
        "exec" | "eval" | "compile" | "execfile" | "builtins.exec" | "builtins.eval"
    )
}

/// The tree-sitter extractor for one source text.
pub struct Extractor<'a> {
    src: &'a str,
    aliases: HashMap<String, String>,
    assigns: HashMap<String, Node<'a>>,
    pub facts: Facts,
    budget: &'a mut Budget,
    limits: &'a Limits,
    layer: usize,
    timed_out: bool,
    too_deep: bool,
    /// Nodes walked, to look at the clock only now and then.
    nodes: u32,
}

/// Source text of a node: an O(1) slice of the (valid UTF-8) source, so nested calls do not
/// re-validate their bytes again and again.
fn text<'a>(n: Node<'_>, src: &'a str) -> &'a str {
    src.get(n.byte_range()).unwrap_or("")
}

fn line_of(n: Node<'_>) -> u32 {
    u32::try_from(n.start_position().row)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// Shorten to `max` chars for snippets, on a char boundary, single line.
pub fn shorten(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .take(max + 1)
        .collect();
    if one.chars().count() > max {
        let mut t: String = one.chars().take(max).collect();
        t.push('…');
        t
    } else {
        one
    }
}

impl<'a> Extractor<'a> {
    pub fn new(src: &'a str, budget: &'a mut Budget, limits: &'a Limits, layer: usize) -> Self {
        Extractor {
            src,
            aliases: HashMap::new(),
            assigns: HashMap::new(),
            facts: Facts::default(),
            budget,
            limits,
            layer,
            timed_out: false,
            too_deep: false,
            nodes: 0,
        }
    }

    /// Walk the tree twice: bindings (imports, assignments) first, then facts.
    pub fn run(&mut self, root: Node<'a>) {
        self.facts.syntax_errors = root.has_error();
        // One cursor per pass: a cursor per node (`Node::walk`) allocated and freed its stack
        // for every node of the tree.
        self.bind(&mut root.walk(), 0);
        self.walk(&mut root.walk(), 0, true, false, false);
        if self.timed_out {
            self.facts
                .notes
                .push("time limit reached: only partly analysed".into());
        }
        if self.too_deep {
            self.facts.notes.push(format!(
                "expressions nested deeper than {} levels were not analysed",
                self.limits.max_depth
            ));
        }
    }

    /// Record the bindings at the cursor's node and below it; the cursor ends where it began.
    fn bind(&mut self, cursor: &mut TreeCursor<'a>, depth: usize) {
        if depth > self.limits.max_depth {
            self.too_deep = true;
            return;
        }
        let n = cursor.node();
        match n.kind() {
            "import_statement" => {
                let mut c = n.walk();
                for child in n.named_children(&mut c) {
                    match child.kind() {
                        "dotted_name" => {
                            let full = text(child, self.src);
                            let head = full.split('.').next().unwrap_or(full);
                            self.aliases.insert(head.to_string(), head.to_string());
                        }
                        "aliased_import" => {
                            if let (Some(name), Some(alias)) = (
                                child.child_by_field_name("name"),
                                child.child_by_field_name("alias"),
                            ) {
                                self.aliases.insert(
                                    text(alias, self.src).to_string(),
                                    text(name, self.src).to_string(),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
            "import_from_statement" => {
                let module = n
                    .child_by_field_name("module_name")
                    .map(|m| text(m, self.src).to_string())
                    .unwrap_or_default();
                let mut c = n.walk();
                for child in n.children_by_field_name("name", &mut c) {
                    let (name, alias) = match child.kind() {
                        "aliased_import" => match (
                            child.child_by_field_name("name"),
                            child.child_by_field_name("alias"),
                        ) {
                            (Some(nm), Some(al)) => (text(nm, self.src), text(al, self.src)),
                            _ => continue,
                        },
                        _ => (text(child, self.src), text(child, self.src)),
                    };
                    self.aliases
                        .insert(alias.to_string(), format!("{module}.{name}"));
                }
            }
            "assignment" => {
                if let (Some(l), Some(r)) = (
                    n.child_by_field_name("left"),
                    n.child_by_field_name("right"),
                ) {
                    if l.kind() == "identifier" {
                        let name = text(l, self.src).to_string();
                        if matches!(r.kind(), "identifier" | "attribute" | "call") {
                            if let Some(q) = self.resolve(r, 0) {
                                if q.contains('.') || q == "__import__" || is_exec(&q) {
                                    self.aliases.insert(name.clone(), q);
                                }
                            }
                        }
                        self.assigns.insert(name, r);
                    }
                }
            }
            // Imports and assignments are statements: an expression holds none of them
            // (a parse with errors may nest anything anywhere, so it is walked all through).
            kind if NO_STATEMENTS_BELOW.contains(&kind) && !n.has_error() => return,
            _ => {}
        }
        for_each_named_child(cursor, |cursor| self.bind(cursor, depth + 1));
    }

    /// The qualified name an expression stands for, after aliases and reflection.
    fn resolve(&self, n: Node<'a>, depth: usize) -> Option<String> {
        if depth > 16 {
            return None;
        }
        match n.kind() {
            "identifier" => {
                let t = text(n, self.src);
                Some(match self.aliases.get(t) {
                    Some(a) => a.clone(),
                    None if is_builtin(t) => t.to_string(),
                    None => "?".to_string(),
                })
            }
            "attribute" => {
                let obj = self.resolve(n.child_by_field_name("object")?, depth + 1)?;
                let attr = text(n.child_by_field_name("attribute")?, self.src);
                if obj.starts_with('?') {
                    return Some(format!("?.{attr}"));
                }
                Some(format!("{obj}.{attr}"))
            }
            "parenthesized_expression" => self.resolve(n.named_child(0)?, depth + 1),
            "call" => {
                let f = self.resolve(n.child_by_field_name("function")?, depth + 1)?;
                let args = n.child_by_field_name("arguments")?;
                let a0 = args.named_child(0);
                match f.as_str() {
                    "__import__" | "importlib.import_module" | "builtins.__import__" => {
                        self.const_str(a0?)
                    }
                    "getattr" | "builtins.getattr" => {
                        let obj = self.resolve(a0?, depth + 1)?;
                        let attr = self.const_str(args.named_child(1)?)?;
                        let obj = match obj.as_str() {
                            "__builtins__" | "builtins" => return Some(attr),
                            _ => obj,
                        };
                        Some(format!("{obj}.{attr}"))
                    }
                    _ => None,
                }
            }
            "subscript" => {
                let v = self.resolve(n.child_by_field_name("value")?, depth + 1)?;
                let key = self.const_str(n.child_by_field_name("subscript")?)?;
                let base = v.strip_suffix(".__dict__").unwrap_or(&v);
                match base {
                    "__builtins__" | "builtins" | "globals()" => Some(key),
                    _ => Some(format!("{base}.{key}")),
                }
            }
            _ => None,
        }
    }

    /// A plain string literal's value (no decoding).
    fn const_str(&self, n: Node<'a>) -> Option<String> {
        match n.kind() {
            "string" => Some(String::from_utf8_lossy(&string_value(n, self.src)).into_owned()),
            _ => None,
        }
    }

    /// Evaluate a constant expression, decoding layers on the way. Bounded by the budget.
    fn eval(&mut self, n: Node<'a>, depth: usize) -> Option<Val> {
        if depth > 48 || !self.budget.step() {
            return None;
        }
        let max = self.budget.max_output;
        match n.kind() {
            "string" => Some((string_value(n, self.src), Vec::new())),
            "concatenated_string" => {
                let mut out = (Vec::new(), Vec::new());
                let mut c = n.walk();
                for s in n.named_children(&mut c) {
                    let (b, ch) = self.eval(s, depth + 1)?;
                    out.0.extend(b);
                    out.1.extend(ch);
                    if out.0.len() > max {
                        self.budget.truncated = true;
                        return None;
                    }
                }
                Some(out)
            }
            "parenthesized_expression" => self.eval(n.named_child(0)?, depth + 1),
            "identifier" => {
                let r = *self.assigns.get(text(n, self.src))?;
                if r.id() == n.id() {
                    return None;
                }
                self.eval(r, depth + 1)
            }
            "binary_operator" => {
                let op = n
                    .child_by_field_name("operator")
                    .map(|o| text(o, self.src))?;
                if op != "+" {
                    return None;
                }
                let (mut a, mut ca) = self.eval(n.child_by_field_name("left")?, depth + 1)?;
                let (b, cb) = self.eval(n.child_by_field_name("right")?, depth + 1)?;
                if a.len() + b.len() > max {
                    self.budget.truncated = true;
                    return None;
                }
                a.extend(b);
                ca.extend(cb);
                Some((a, ca))
            }
            "subscript" => {
                // s[::-1]
                let sub = n.child_by_field_name("subscript")?;
                if sub.kind() == "slice" && text(sub, self.src).replace(' ', "") == "::-1" {
                    let (mut v, mut ch) = self.eval(n.child_by_field_name("value")?, depth + 1)?;
                    v.reverse();
                    ch.push("reverse");
                    return Some((v, ch));
                }
                None
            }
            "call" => self.eval_call(n, depth),
            _ => None,
        }
    }

    fn eval_call(&mut self, n: Node<'a>, depth: usize) -> Option<Val> {
        let func = n.child_by_field_name("function")?;
        let args = n.child_by_field_name("arguments")?;
        // `f(x for x in y)`: the generator is the whole argument list.
        let a0 = if args.kind() == "generator_expression" {
            Some(args)
        } else {
            args.named_child(0)
        };
        let name = self.resolve(func, 0);
        if let Some(kind) = name.as_deref().and_then(decoder_of) {
            let (v, mut ch) = self.eval(a0?, depth + 1)?;
            let out = match kind {
                "base64" => decode::base64(&v, self.budget)?,
                "base32" => decode::base32(&v, self.budget)?,
                "hex" => decode::hex(&v)?,
                other => decode::decompress(other, &v, self.budget)?,
            };
            ch.push(kind);
            return Some((out, ch));
        }
        match name.as_deref() {
            Some("codecs.decode" | "codecs.encode") => {
                let (v, mut ch) = self.eval(a0?, depth + 1)?;
                let enc = args
                    .named_child(1)
                    .and_then(|e| self.const_str(e))
                    .unwrap_or_default();
                let out = self.apply_codec(&enc, v)?;
                ch.push(codec_label(&enc));
                return Some((out, ch));
            }
            Some("str" | "bytes" | "bytearray" | "unicode" | "compile" | "builtins.compile") => {
                return self.eval(a0?, depth + 1)
            }
            Some("chr" | "unichr") => {
                let c = char::from_u32(u32::try_from(int_value(a0?, self.src)?).ok()?)?;
                return Some((c.to_string().into_bytes(), vec!["chr"]));
            }
            _ => {}
        }
        if func.kind() == "attribute" {
            let attr = text(func.child_by_field_name("attribute")?, self.src);
            let obj = func.child_by_field_name("object")?;
            match attr {
                "decode" | "encode" => {
                    let (v, mut ch) = self.eval(obj, depth + 1)?;
                    let enc = a0.and_then(|e| self.const_str(e)).unwrap_or_default();
                    let label = codec_label(&enc);
                    let out = self.apply_codec(&enc, v)?;
                    if label != "text" {
                        ch.push(label);
                    }
                    return Some((out, ch));
                }
                "fromhex" => {
                    let (v, mut ch) = self.eval(a0?, depth + 1)?;
                    ch.push("hex");
                    return Some((decode::hex(&v)?, ch));
                }
                "join" => {
                    let (sep, _) = self.eval(obj, depth + 1)?;
                    let items = self.eval_items(a0?, depth + 1)?;
                    let mut out = Vec::new();
                    let mut ch = Vec::new();
                    for (i, (b, c)) in items.into_iter().enumerate() {
                        if i > 0 {
                            out.extend_from_slice(&sep);
                        }
                        out.extend(b);
                        if out.len() > self.budget.max_output {
                            self.budget.truncated = true;
                            return None;
                        }
                        for x in c {
                            if !ch.contains(&x) {
                                ch.push(x);
                            }
                        }
                    }
                    return Some((out, ch));
                }
                _ => {}
            }
        }
        None
    }

    /// Items of a list/tuple, `chr(x) for x in [...]`, or `map(chr, [...])`.
    fn eval_items(&mut self, n: Node<'a>, depth: usize) -> Option<Vec<Val>> {
        let mut out = Vec::new();
        match n.kind() {
            "list" | "tuple" => {
                let mut c = n.walk();
                for item in n.named_children(&mut c) {
                    out.push(self.eval(item, depth + 1)?);
                }
            }
            "generator_expression" | "list_comprehension" => {
                let body = n.child_by_field_name("body")?;
                let body_fn = body
                    .child_by_field_name("function")
                    .map(|f| text(f, self.src));
                if body.kind() != "call" || !matches!(body_fn, Some("chr" | "unichr")) {
                    return None;
                }
                let mut c = n.walk();
                let clause = n
                    .named_children(&mut c)
                    .find(|x| x.kind() == "for_in_clause")?;
                let list = clause.child_by_field_name("right")?;
                out = self.chr_list(list)?;
            }
            "call" => {
                let f = text(n.child_by_field_name("function")?, self.src);
                let args = n.child_by_field_name("arguments")?;
                if f == "map" && args.named_child(0).map(|a| text(a, self.src)) == Some("chr") {
                    out = self.chr_list(args.named_child(1)?)?;
                } else {
                    return None;
                }
            }
            "identifier" => {
                let r = *self.assigns.get(text(n, self.src))?;
                if r.id() == n.id() {
                    return None;
                }
                return self.eval_items(r, depth + 1);
            }
            _ => return None,
        }
        Some(out)
    }

    fn chr_list(&mut self, list: Node<'a>) -> Option<Vec<Val>> {
        let list = if list.kind() == "identifier" {
            *self.assigns.get(text(list, self.src))?
        } else {
            list
        };
        if !matches!(list.kind(), "list" | "tuple") {
            return None;
        }
        let mut out = Vec::new();
        let mut c = list.walk();
        for item in list.named_children(&mut c) {
            if !self.budget.step() {
                return None;
            }
            let ch = char::from_u32(u32::try_from(int_value(item, self.src)?).ok()?)?;
            out.push((ch.to_string().into_bytes(), vec!["chr"]));
        }
        Some(out)
    }

    fn apply_codec(&mut self, enc: &str, v: Vec<u8>) -> Option<Vec<u8>> {
        match codec_label(enc) {
            "rot13" => Some(decode::rot13(&v)),
            "base64" => decode::base64(&v, self.budget),
            "hex" => decode::hex(&v),
            "zlib" => decode::inflate(&v, self.budget),
            "bz2" => decode::bunzip2(&v, self.budget),
            _ => Some(v),
        }
    }

    /// Record the facts at the cursor's node and below it; the cursor ends where it began.
    fn walk(
        &mut self,
        cursor: &mut TreeCursor<'a>,
        depth: usize,
        top: bool,
        in_decode: bool,
        in_loop: bool,
    ) {
        let n = cursor.node();
        if self.timed_out {
            return;
        }
        if depth > self.limits.max_depth {
            self.too_deep = true;
            return;
        }
        self.nodes = self.nodes.wrapping_add(1);
        if self.nodes.is_multiple_of(4096) && Instant::now() > self.limits.deadline {
            self.timed_out = true;
            return;
        }
        let mut top = top;
        let mut in_decode = in_decode;
        let mut in_loop = in_loop;
        match n.kind() {
            "function_definition" | "class_definition" | "lambda" => top = false,
            "for_statement"
            | "while_statement"
            | "for_in_clause"
            | "list_comprehension"
            | "generator_expression" => in_loop = true,
            "binary_operator" | "augmented_assignment" => {
                let op = n.child_by_field_name("operator").map(|o| text(o, self.src));
                if in_loop && matches!(op, Some("^" | "^=")) {
                    self.facts.xor_in_loop.push(line_of(n));
                }
            }
            // A bare string statement (a docstring or a commented-out block) is never used by
            // the code, so its URLs and paths are documentation, not destinations.
            "expression_statement"
                if n.named_child_count() == 1
                    && n.named_child(0)
                        .is_some_and(|c| matches!(c.kind(), "string" | "concatenated_string")) =>
            {
                return;
            }
            "string" => {
                if self.facts.strings.len() < self.limits.max_strings {
                    let v = string_value(n, self.src);
                    let s = String::from_utf8_lossy(&v).into_owned();
                    if !in_decode && decode::looks_base64(&s) {
                        self.try_literal_blob(&s, line_of(n));
                    }
                    self.facts.strings.push((line_of(n), self.layer, s));
                }
                return;
            }
            "call" => {
                let decoded_here = self.call(n, top, in_decode);
                in_decode = in_decode || decoded_here;
            }
            _ => {}
        }
        for_each_named_child(cursor, |cursor| {
            self.walk(cursor, depth + 1, top, in_decode, in_loop)
        });
    }

    /// Record a call; returns whether it was statically decoded (so nested calls are not
    /// decoded again).
    fn call(&mut self, n: Node<'a>, top: bool, in_decode: bool) -> bool {
        let Some(func) = n.child_by_field_name("function") else {
            return false;
        };
        let resolved = self.resolve(func, 0);
        let reflective = matches!(func.kind(), "call" | "subscript")
            || (func.kind() == "attribute"
                && func
                    .child_by_field_name("object")
                    .is_some_and(|o| o.kind() == "call")
                && resolved.is_some());
        let name = resolved.unwrap_or_else(|| match func.kind() {
            "attribute" => format!(
                "?.{}",
                func.child_by_field_name("attribute")
                    .map(|a| text(a, self.src))
                    .unwrap_or("")
            ),
            _ => "?".to_string(),
        });
        let args = n.child_by_field_name("arguments");
        let mut call = Call {
            name,
            line: line_of(n),
            snippet: shorten(text(n, self.src), 160),
            top_level: top,
            args_text: args
                .map(|a| shorten(text(a, self.src), 300))
                .unwrap_or_default(),
            reflective,
            layer: self.layer,
            ..Default::default()
        };
        if let Some(args) = args {
            let mut c = args.walk();
            for a in args.named_children(&mut c) {
                if a.kind() == "keyword_argument" {
                    if let (Some(k), Some(v)) = (
                        a.child_by_field_name("name"),
                        a.child_by_field_name("value"),
                    ) {
                        call.kwargs.push((
                            text(k, self.src).to_string(),
                            shorten(text(v, self.src), 200),
                        ));
                    }
                } else if a.kind() == "string" {
                    call.strs
                        .push(String::from_utf8_lossy(&string_value(a, self.src)).into_owned());
                }
            }
            // Only exec-like sinks need to know what feeds them.
            if is_exec(&call.name) {
                collect_inner_calls(args, self, &mut call.inner, 0);
            }
        }
        let mut decoded_here = false;
        let name = call.name.clone();
        let is_decoder = decoder_of(&name).is_some()
            || matches!(
                name.as_str(),
                "codecs.decode" | "?.decode" | "?.join" | "?.fromhex" | "bytes.fromhex"
            );
        if !in_decode && (is_decoder || is_exec(&name)) {
            let target = if is_exec(&name) {
                args.and_then(|a| a.named_child(0))
            } else {
                Some(n)
            };
            if let Some(t) = target {
                if let Some((bytes, chain)) = self.eval(t, 0) {
                    if !chain.is_empty() {
                        decoded_here = true;
                        let idx = self.record_decoded(call.line, chain, &bytes);
                        if is_exec(&name) {
                            call.decoded_arg = idx;
                        }
                    }
                }
            }
        }
        self.facts.calls.push(call);
        decoded_here
    }

    /// A long base64 literal that is not passed to a decoder: decode it if it is code.
    fn try_literal_blob(&mut self, s: &str, line: u32) {
        let Some(mut b) = decode::base64(s.as_bytes(), self.budget) else {
            return;
        };
        let mut chain = vec!["base64"];
        if let Some(kind) = decode::sniff_compression(&b) {
            if let Some(z) = decode::decompress(kind, &b, self.budget) {
                b = z;
                chain.push(kind);
            }
        }
        if decode::is_texty(&b) && decode::looks_like_code(&String::from_utf8_lossy(&b)) {
            self.record_decoded(line, chain, &b);
        }
    }

    fn record_decoded(
        &mut self,
        line: u32,
        chain: Vec<&'static str>,
        bytes: &[u8],
    ) -> Option<usize> {
        if !decode::is_texty(bytes) || !self.budget.charge(bytes.len()) {
            return None;
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        if let Some(i) = self.facts.decoded.iter().position(|d| d.text == text) {
            return Some(i);
        }
        self.facts.decoded.push(Decoded {
            line,
            chain,
            text,
            layer: self.layer,
        });
        Some(self.facts.decoded.len() - 1)
    }
}

/// Expression kinds: no import or assignment statement is ever below them.
const NO_STATEMENTS_BELOW: &[&str] = &[
    "call",
    "argument_list",
    "string",
    "concatenated_string",
    "binary_operator",
    "boolean_operator",
    "comparison_operator",
    "unary_operator",
    "not_operator",
    "attribute",
    "subscript",
    "list",
    "tuple",
    "set",
    "dictionary",
    "parenthesized_expression",
    "list_comprehension",
    "set_comprehension",
    "dictionary_comprehension",
    "generator_expression",
    "conditional_expression",
    "lambda",
];

/// Calls `visit` with the cursor on each named child of its node in turn, then puts the cursor
/// back on the node.
fn for_each_named_child<'a>(
    cursor: &mut TreeCursor<'a>,
    mut visit: impl FnMut(&mut TreeCursor<'a>),
) {
    if !cursor.goto_first_child() {
        return;
    }
    loop {
        if cursor.node().is_named() {
            visit(cursor);
        }
        if !cursor.goto_next_sibling() {
            break;
        }
    }
    cursor.goto_parent();
}

fn collect_inner_calls<'a>(n: Node<'a>, ex: &Extractor<'a>, out: &mut Vec<String>, depth: usize) {
    if depth > 24 || out.len() > 32 {
        return;
    }
    let mut c = n.walk();
    for child in n.named_children(&mut c) {
        if child.kind() == "call" {
            if let Some(f) = child.child_by_field_name("function") {
                let name = ex.resolve(f, 0).unwrap_or_else(|| match f.kind() {
                    "attribute" => format!(
                        "?.{}",
                        f.child_by_field_name("attribute")
                            .map(|a| text(a, ex.src))
                            .unwrap_or("")
                    ),
                    _ => "?".into(),
                });
                out.push(name);
            }
        }
        collect_inner_calls(child, ex, out, depth + 1);
    }
}

/// Builtins and module-level names kept as themselves when not rebound by an import.
fn is_builtin(n: &str) -> bool {
    matches!(
        n,
        "exec"
            | "eval"
            | "compile"
            | "execfile"
            | "open"
            | "getattr"
            | "setattr"
            | "__import__"
            | "chr"
            | "unichr"
            | "map"
            | "str"
            | "bytes"
            | "bytearray"
            | "unicode"
            | "dict"
            | "repr"
            | "print"
            | "__builtins__"
            | "builtins"
            | "globals"
            | "locals"
            | "vars"
            | "input"
            | "list"
            | "len"
            | "range"
            | "int"
            | "ord"
            | "setup"
            | "file"
            | "reload"
            | "os"
            | "sys"
            | "socket"
            | "subprocess"
            | "base64"
            | "zlib"
            | "marshal"
            | "codecs"
            | "binascii"
            | "urllib"
            | "urllib2"
            | "requests"
    )
}

fn codec_label(enc: &str) -> &'static str {
    match enc.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "rot13" => "rot13",
        "base64" | "b64" | "base64codec" => "base64",
        "hex" | "hexcodec" => "hex",
        "zlib" | "zip" | "zlibcodec" => "zlib",
        "bz2" | "bz2codec" => "bz2",
        _ => "text",
    }
}

/// Value of a `string` node: prefix handled, escapes decoded, f-string parts kept as written.
pub fn string_value(n: Node<'_>, src: &str) -> Vec<u8> {
    let raw = text(n, src);
    let prefix_len = raw.find(['\'', '"']).unwrap_or(0);
    let prefix = raw.get(..prefix_len).unwrap_or("").to_ascii_lowercase();
    let body = raw.get(prefix_len..).unwrap_or("");
    let q = if body.starts_with("\"\"\"") || body.starts_with("'''") {
        3
    } else {
        1
    };
    let inner = if body.len() >= 2 * q {
        body.get(q..body.len() - q).unwrap_or("")
    } else {
        ""
    };
    decode::unescape(inner, prefix.contains('r'), prefix.contains('b'))
}

fn int_value(n: Node<'_>, src: &str) -> Option<i64> {
    if n.kind() != "integer" {
        return None;
    }
    let t = text(n, src).replace('_', "").to_ascii_lowercase();
    let t = t.trim_end_matches('l');
    if let Some(h) = t.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = t.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = t.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else {
        t.parse().ok()
    }
}

/// The token/line fallback: calls as dotted names followed by `(`, string literals between
/// quotes, `import x as y` aliases. No decoding of nested expressions.
pub fn fallback(src: &str, layer: usize, max_strings: usize) -> Facts {
    let mut facts = Facts::default();
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (i, line) in src.lines().enumerate() {
        let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("import ") {
            for part in rest.split(',') {
                let mut w = part.split_whitespace();
                if let (Some(m), Some("as"), Some(a)) = (w.next(), w.next(), w.next()) {
                    aliases.insert(a.to_string(), m.to_string());
                }
            }
        } else if let Some(rest) = t.strip_prefix("from ") {
            let mut w = rest.split_whitespace();
            if let (Some(m), Some("import")) = (w.next(), w.next()) {
                let names: Vec<&str> = w.collect();
                for part in names.join(" ").split(',') {
                    let mut p = part.split_whitespace();
                    if let Some(n) = p.next() {
                        let a = match (p.next(), p.next()) {
                            (Some("as"), Some(a)) => a,
                            _ => n,
                        };
                        aliases.insert(
                            a.trim_matches(['(', ')']).to_string(),
                            format!("{m}.{}", n.trim_matches(['(', ')'])),
                        );
                    }
                }
            }
        }
        let b = line.as_bytes();
        let mut j = 0;
        while j < b.len() {
            let c = b.get(j).copied().unwrap_or(0);
            if c == b'#' {
                break;
            }
            if c == b'"' || c == b'\'' {
                let start = j + 1;
                let mut k = start;
                while k < b.len() && b.get(k) != Some(&c) {
                    if b.get(k) == Some(&b'\\') {
                        k += 1;
                    }
                    k += 1;
                }
                if facts.strings.len() < max_strings {
                    let body = line.get(start..k.min(line.len())).unwrap_or("");
                    let v =
                        String::from_utf8_lossy(&decode::unescape(body, false, false)).into_owned();
                    facts.strings.push((lineno, layer, v));
                }
                j = k + 1;
                continue;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let s = j;
                while j < b.len()
                    && b.get(j)
                        .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'_' || *x == b'.')
                {
                    j += 1;
                }
                let mut k = j;
                while b.get(k) == Some(&b' ') {
                    k += 1;
                }
                if b.get(k) == Some(&b'(') {
                    let dotted = line.get(s..j).unwrap_or("");
                    let (head, tail) = dotted.split_once('.').unwrap_or((dotted, ""));
                    let name = match aliases.get(head) {
                        Some(h) if tail.is_empty() => h.clone(),
                        Some(h) => format!("{h}.{tail}"),
                        None if tail.is_empty() || is_builtin(head) => dotted.to_string(),
                        None => format!("?.{}", dotted.rsplit('.').next().unwrap_or("")),
                    };
                    facts.calls.push(Call {
                        name,
                        line: lineno,
                        snippet: shorten(t, 160),
                        top_level: !line.starts_with([' ', '\t']),
                        args_text: shorten(line.get(k..).unwrap_or(""), 300),
                        layer,
                        ..Default::default()
                    });
                }
                continue;
            }
            j += 1;
        }
    }
    facts
}
