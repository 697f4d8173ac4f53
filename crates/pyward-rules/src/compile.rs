//! Compiler: expanded AST → typed matcher tree; evaluator; event-type inference.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::ast::{Expr, FieldExpr, Modifier, Op, Rhs, TArg, Transformer};
use crate::event::{Event, EventType, FdAttr, Value};
use crate::fields::{self, glob_match, ArgSel, Field, FieldType, Kind, NetPart, Val};

/// Most nodes a rule may have after macro expansion.
pub(crate) const MAX_EXPANDED_NODES: usize = 1_000_000;
/// Deepest nesting after macro expansion.
pub(crate) const MAX_EXPANDED_DEPTH: usize = 2_000;

#[derive(Debug, Clone)]
pub(crate) struct CompileError {
    pub pos: usize,
    pub message: String,
    /// The error is an unknown field (skip-if-unknown-filter applies).
    pub unknown_field: bool,
}

fn cerr(pos: usize, message: impl Into<String>) -> CompileError {
    CompileError {
        pos,
        message: message.into(),
        unknown_field: false,
    }
}

// ---------------------------------------------------------------- macro expansion

/// Replace macro references by their (already parsed) bodies, recursively.
/// `lookup` gives the body of a macro visible from this rule.
pub(crate) fn expand_macros<'m>(
    e: &Expr,
    lookup: &dyn Fn(&str) -> Option<&'m Expr>,
    used: &mut dyn FnMut(&str),
) -> Result<Expr, CompileError> {
    let mut budget = MAX_EXPANDED_NODES;
    let mut stack: Vec<String> = Vec::new();
    expand(e, lookup, used, &mut stack, &mut budget, 0)
}

fn expand<'m>(
    e: &Expr,
    lookup: &dyn Fn(&str) -> Option<&'m Expr>,
    used: &mut dyn FnMut(&str),
    stack: &mut Vec<String>,
    budget: &mut usize,
    depth: usize,
) -> Result<Expr, CompileError> {
    if depth > MAX_EXPANDED_DEPTH {
        return Err(cerr(
            0,
            format!(
                "condition nests deeper than {MAX_EXPANDED_DEPTH} levels after macro expansion"
            ),
        ));
    }
    if *budget == 0 {
        return Err(cerr(
            0,
            format!("condition has more than {MAX_EXPANDED_NODES} nodes after macro expansion"),
        ));
    }
    *budget -= 1;
    Ok(match e {
        Expr::And(v) => Expr::and(
            v.iter()
                .map(|x| expand(x, lookup, used, stack, budget, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(v) => Expr::or(
            v.iter()
                .map(|x| expand(x, lookup, used, stack, budget, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Expr::Not(Box::new(expand(x, lookup, used, stack, budget, depth + 1)?)),
        Expr::Check { .. } => e.clone(),
        Expr::Macro { name, pos } => {
            if stack.iter().any(|s| s == name) {
                let mut chain = stack.clone();
                chain.push(name.clone());
                return Err(cerr(
                    *pos,
                    format!("Macro cycle detected: {}", chain.join(" -> ")),
                ));
            }
            let Some(body) = lookup(name) else {
                return Err(cerr(
                    *pos,
                    format!("Undefined macro '{name}' used in filter."),
                ));
            };
            used(name);
            stack.push(name.clone());
            let r = expand(body, lookup, used, stack, budget, depth + 1);
            stack.pop();
            r?
        }
    })
}

// ---------------------------------------------------------------- event-type sets

const WORDS: usize = 8;

/// A set of event types (bitset over [`EventType::index`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct TypeSet([u64; WORDS]);

impl TypeSet {
    pub(crate) fn all() -> TypeSet {
        let mut s = TypeSet([0; WORDS]);
        for t in EventType::all() {
            s.insert(t.index());
        }
        s
    }
    pub(crate) fn empty() -> TypeSet {
        TypeSet([0; WORDS])
    }
    fn insert(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn and(&self, o: &TypeSet) -> TypeSet {
        let mut r = self.clone();
        for (a, b) in r.0.iter_mut().zip(o.0.iter()) {
            *a &= b;
        }
        r
    }
    fn or(&self, o: &TypeSet) -> TypeSet {
        let mut r = self.clone();
        for (a, b) in r.0.iter_mut().zip(o.0.iter()) {
            *a |= b;
        }
        r
    }
    fn complement(&self) -> TypeSet {
        let all = TypeSet::all();
        let mut r = self.clone();
        for (a, b) in r.0.iter_mut().zip(all.0.iter()) {
            *a = !*a & b;
        }
        r
    }
    pub(crate) fn is_all(&self) -> bool {
        *self == TypeSet::all()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        EventType::all().filter(|t| self.contains(t.index()))
    }
}

/// Falco's inference (`ppm_codes.cpp`): and → ∩, or → ∪, not pushed to the leaves;
/// checks not on `evt.type` are neutral (all types) and not inverted.
pub(crate) fn event_types(e: &Expr, negated: bool) -> TypeSet {
    match e {
        Expr::And(v) | Expr::Or(v) => {
            let is_and = matches!(e, Expr::And(_)) != negated;
            let mut acc: Option<TypeSet> = None;
            for x in v {
                let s = event_types(x, negated);
                acc = Some(match acc {
                    None => s,
                    Some(a) if is_and => a.and(&s),
                    Some(a) => a.or(&s),
                });
            }
            acc.unwrap_or_else(TypeSet::all)
        }
        Expr::Not(x) => event_types(x, !negated),
        Expr::Macro { .. } => TypeSet::all(),
        Expr::Check {
            lhs: FieldExpr::Field {
                name, arg: None, ..
            },
            op,
            modifier,
            rhs,
            ..
        } if name == "evt.type" => {
            let names: Vec<&str> = match rhs {
                Rhs::Value(v) => vec![v.as_str()],
                Rhs::List(l) => l.iter().map(String::as_str).collect(),
                _ => return TypeSet::all(),
            };
            let mut s = TypeSet::empty();
            for n in names {
                if let Some(t) = EventType::from_name(n) {
                    s.insert(t.index());
                }
            }
            let positive = match (op, modifier) {
                (Op::Eq, None) | (Op::In, None) | (Op::Eq, Some(Modifier::AnyOf)) => true,
                (Op::Ne, None) | (Op::Ne, Some(Modifier::AllOf)) => false,
                _ => return TypeSet::all(),
            };
            if positive != negated {
                s
            } else {
                s.complement()
            }
        }
        Expr::Check { .. } => TypeSet::all(),
    }
}

// ---------------------------------------------------------------- compiled tree

#[derive(Clone, Debug)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Check(Box<Check>),
    /// A check shared with other rules: its result is kept in this [`Memo`] slot (held
    /// here, next to the pointer, so a remembered result needs no load of the check).
    Memo(u16, Box<Check>),
}

#[derive(Clone, Debug)]
// `repr(C)` keeps the hot fields (slot, operand, matcher) together at the start and
// the cold key last, so a check touches as few cache lines as possible.
#[repr(C)]
pub(crate) struct Check {
    /// Slot in the per-event [`Memo`], or [`NO_SLOT`].
    slot: u16,
    /// How to read `lhs` straight from the event, when it is a plain attribute.
    fast: Fast,
    /// The read and the test fused into one specialised step, decided at build time
    /// (no per-event dispatch on operator and field type), for the common checks.
    kernel: Kernel,
    m: Matcher,
    lhs: Operand,
    /// The check as written, without source positions: equal keys mean equal checks
    /// (used to evaluate a check shared by several rules once per event).
    key: Box<str>,
}

/// A plain event attribute read without going through [`fields::extract`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fast {
    None,
    Proc(u8, crate::event::ProcAttr),
    Fd(FdAttr),
    User(crate::event::UserAttr),
    Container(crate::event::ContainerAttr),
    /// `fd.typechar`, from the fd type.
    Typechar,
    /// `evt.is_open_read` / `_write` / `_create`, from [`Event::open_mode`].
    OpenRead,
    OpenWrite,
    OpenCreate,
    /// `evt.rawres`.
    RawRes,
    /// `evt.num`.
    EvtNum,
    /// Any ancestor's attribute (`proc.aname` without index): true if one matches.
    AnyAncestor(crate::event::ProcAttr),
}

impl Fast {
    /// The attribute's value (`Some(None)`: missing), or `None` when this is not a
    /// single value read straight from the event.
    #[inline(always)]
    fn read<E: Event + ?Sized>(self, e: &E) -> Option<Option<Value<'_>>> {
        Some(match self {
            Fast::Proc(level, attr) => e.proc(usize::from(level), attr),
            Fast::Fd(attr) => e.fd(attr),
            Fast::User(attr) => e.user(attr),
            Fast::Container(attr) => e.container(attr),
            Fast::Typechar => match e.fd(FdAttr::Type) {
                Some(Value::Str(t)) => Some(Value::Str(fields::typechar(t))),
                _ => None,
            },
            // same derivations as `fields::extract`
            Fast::OpenRead => Some(Value::Bool(
                e.open_mode().is_some_and(|(a, _)| a == 0 || a == 2),
            )),
            Fast::OpenWrite => Some(Value::Bool(
                e.open_mode().is_some_and(|(a, _)| a == 1 || a == 2),
            )),
            Fast::OpenCreate => Some(Value::Bool(e.open_mode().is_some_and(|(_, c)| c))),
            Fast::RawRes => e.res().map(Value::Int),
            Fast::EvtNum => e.num().map(Value::Uint),
            Fast::AnyAncestor(_) | Fast::None => return None,
        })
    }

    fn of(lhs: &Operand) -> Fast {
        match lhs {
            Operand::Field(f) => Fast::of_kind(&f.kind),
            Operand::Transform(_) => Fast::None,
        }
    }

    fn of_kind(kind: &Kind) -> Fast {
        match kind {
            Kind::Proc(level, attr) => match u8::try_from(*level) {
                Ok(l) => Fast::Proc(l, *attr),
                Err(_) => Fast::None,
            },
            // fd.sockfamily has a fallback computed by `extract`
            Kind::Fd(attr) if *attr != FdAttr::SockFamily => Fast::Fd(*attr),
            Kind::User(attr) => Fast::User(*attr),
            Kind::Container(attr) => Fast::Container(*attr),
            Kind::FdTypechar => Fast::Typechar,
            Kind::EvtIsOpenRead => Fast::OpenRead,
            Kind::EvtIsOpenWrite => Fast::OpenWrite,
            Kind::EvtIsOpenCreate => Fast::OpenCreate,
            Kind::EvtRawres => Fast::RawRes,
            Kind::EvtNum => Fast::EvtNum,
            // as `fields::net_part`: the server or client side's attribute as stored
            Kind::FdServer(p) | Kind::FdClient(p) => {
                let server = matches!(kind, Kind::FdServer(_));
                Fast::Fd(match (server, p) {
                    (true, NetPart::Ip) => FdAttr::Sip,
                    (false, NetPart::Ip) => FdAttr::Cip,
                    (true, NetPart::Port) => FdAttr::Sport,
                    (false, NetPart::Port) => FdAttr::Cport,
                    (true, NetPart::Name) => FdAttr::SipName,
                    (false, NetPart::Name) => FdAttr::CipName,
                })
            }
            Kind::AnyAncestor(attr) => Fast::AnyAncestor(*attr),
            _ => Fast::None,
        }
    }
}

/// A check specialised when the rules are compiled: how to read the field (a plain
/// attribute, [`Fast`]) and which test to apply to it, fused so that evaluating it
/// is one `match` and the test, with no re-dispatch on operator or value type and
/// no conversion of the value.
/// Every kernel gives exactly the answer of [`Check::eval_generic`]; a value of an
/// unexpected type falls back to the generic test.
#[derive(Clone, Debug)]
enum Kernel {
    /// A text attribute (read through [`Check::fast`]) and a string test.
    Str(StrTest),
    /// A boolean attribute `= rhs` (`!= rhs` when `negate`).
    Bool { rhs: bool, negate: bool },
    /// A numeric attribute compared with a constant.
    Num { op: NOp, rhs: i128 },
    /// A numeric attribute in a list of constants.
    NumIn(Box<[i128]>),
    /// Any ancestor's text attribute (`proc.aname in (...)`): true if one passes.
    AnyAncestor(crate::event::ProcAttr, StrTest),
    /// A syscall argument by name (`evt.arg.flags`), tested as text.
    Arg(Box<str>, StrTest),
    /// `tolower(<text attribute>)`: ASCII values are lowered into a buffer on the
    /// stack (no allocation) and given to the check's matcher.
    Lower(Fast),
    /// Another plain attribute (an IP, say): read straight, tested by the matcher.
    Value,
    /// Not specialised: [`Check::eval_generic`] and the matcher decide.
    Generic,
}

/// A string test of a [`Kernel::Str`], with what it needs precomputed.
#[derive(Clone, Debug)]
enum StrTest {
    Eq(Box<str>),
    Ne(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
    /// `glob`, with the length of the literal start of the pattern (before any
    /// wildcard), compared first.
    Glob {
        pat: Box<str>,
        lit: usize,
    },
    /// `in` (`not in` when `negate`).
    In {
        set: Box<StrSet>,
        negate: bool,
    },
    PMatch(Box<StrSet>),
    /// Several tests of one field merged from an `or`: any passes.
    Any(Box<[StrTest]>),
}

impl Kernel {
    /// The kernel of a check on `lhs` (read through `src`) with matcher `m`.
    fn of_check(lhs: &Operand, src: Fast, m: &Matcher, ty: FieldType) -> Kernel {
        match lhs {
            Operand::Field(Field {
                kind: Kind::EvtArg(ArgSel::Name(name)),
                ..
            }) => match StrTest::of(m) {
                Some(t) => Kernel::Arg(name.as_str().into(), t),
                None => Kernel::Generic,
            },
            Operand::Transform(t)
                if t.kind == Transformer::ToLower && !matches!(m, Matcher::Exists) =>
            {
                match t.args.as_slice() {
                    [TArgC::Op(Operand::Field(f))]
                        if f.ty == FieldType::Str
                            && !matches!(
                                Fast::of_kind(&f.kind),
                                Fast::None | Fast::AnyAncestor(_)
                            ) =>
                    {
                        Kernel::Lower(Fast::of_kind(&f.kind))
                    }
                    _ => Kernel::Generic,
                }
            }
            _ => Kernel::of(src, m, ty),
        }
    }

    fn of(src: Fast, m: &Matcher, ty: FieldType) -> Kernel {
        let single = !matches!(src, Fast::None | Fast::AnyAncestor(_));
        match (src, m) {
            (Fast::AnyAncestor(attr), m) if ty == FieldType::Str => match StrTest::of(m) {
                Some(t) => Kernel::AnyAncestor(attr, t),
                None => Kernel::Generic,
            },
            (_, _) if !single => Kernel::Generic,
            (_, Matcher::Bool { rhs, negate }) if ty == FieldType::Bool => Kernel::Bool {
                rhs: *rhs,
                negate: *negate,
            },
            (_, Matcher::Num { op, rhs })
                if matches!(ty, FieldType::Int | FieldType::Uint | FieldType::AbsTime) =>
            {
                Kernel::Num { op: *op, rhs: *rhs }
            }
            (_, Matcher::NumIn { set })
                if matches!(ty, FieldType::Int | FieldType::Uint | FieldType::AbsTime) =>
            {
                Kernel::NumIn(set.clone().into_boxed_slice())
            }
            (_, m) if ty == FieldType::Str => match StrTest::of(m) {
                Some(t) => Kernel::Str(t),
                None => Kernel::Value,
            },
            (_, Matcher::Exists) => Kernel::Generic,
            _ => Kernel::Value,
        }
    }
}

impl StrTest {
    /// The test equivalent to `m` on text values, if it is one of the fused kinds.
    fn of(m: &Matcher) -> Option<StrTest> {
        Some(match m {
            Matcher::Str { op, needle } => match op {
                SOp::Eq => StrTest::Eq(needle.clone()),
                SOp::Ne => StrTest::Ne(needle.clone()),
                SOp::StartsWith => StrTest::StartsWith(needle.clone()),
                SOp::EndsWith => StrTest::EndsWith(needle.clone()),
                SOp::Contains => StrTest::Contains(needle.clone()),
                SOp::Glob => StrTest::Glob {
                    lit: glob_literal_len(needle.as_bytes()),
                    pat: needle.clone(),
                },
                SOp::IContains | SOp::IGlob => return None,
            },
            Matcher::InSet { set, negate } => StrTest::In {
                set: set.clone(),
                negate: *negate,
            },
            Matcher::PMatch(set) => StrTest::PMatch(set.clone()),
            Matcher::AnyOf(ms) => {
                let ts = ms.iter().map(StrTest::of).collect::<Option<Vec<_>>>()?;
                // `x = a or x = b or x in (c, d)`: one set lookup
                let mut all: Vec<String> = Vec::new();
                for t in &ts {
                    match t {
                        StrTest::Eq(n) => all.push(n.to_string()),
                        StrTest::In { set, negate: false } => {
                            all.extend(set.members().map(str::to_owned))
                        }
                        _ => {
                            all.clear();
                            break;
                        }
                    }
                }
                if all.is_empty() {
                    StrTest::Any(ts.into_boxed_slice())
                } else {
                    StrTest::In {
                        set: Box::new(StrSet::new(&all)),
                        negate: false,
                    }
                }
            }
            _ => return None,
        })
    }

    /// As [`Matcher::test_str`] on the matcher this test came from.
    #[inline(always)]
    fn test(&self, s: &str) -> bool {
        let b = s.as_bytes();
        match self {
            StrTest::Eq(n) => bytes_eq(b, n.as_bytes()),
            StrTest::Ne(n) => !bytes_eq(b, n.as_bytes()),
            StrTest::StartsWith(n) => {
                let n = n.as_bytes();
                b.get(..n.len()).is_some_and(|p| bytes_eq(p, n))
            }
            StrTest::EndsWith(n) => {
                let n = n.as_bytes();
                b.len()
                    .checked_sub(n.len())
                    .and_then(|i| b.get(i..))
                    .is_some_and(|p| bytes_eq(p, n))
            }
            StrTest::In { set, negate } => set.contains(s) != *negate,
            _ => self.test_cold(s),
        }
    }

    /// The less frequent tests, out of line to keep [`StrTest::test`] small.
    #[inline(never)]
    fn test_cold(&self, s: &str) -> bool {
        match self {
            StrTest::Contains(n) => contains_str(s, n),
            StrTest::Glob { pat, lit } => {
                let p = pat.as_bytes();
                p.get(..*lit).is_some_and(|l| s.as_bytes().starts_with(l))
                    && glob_match(p, s.as_bytes(), false)
            }
            StrTest::PMatch(set) => pmatch(set, s),
            StrTest::Any(ts) => ts.iter().any(|t| t.test(s)),
            t => t.test(s),
        }
    }
}

/// Length of the literal start of a glob pattern (before its first `*`, `?`, `[` or `\`).
fn glob_literal_len(pat: &[u8]) -> usize {
    pat.iter()
        .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pat.len())
}

/// [`Check::slot`] of a check that is not memoised.
const NO_SLOT: u16 = u16::MAX;

/// Memoised check results for one event: bit `i` of `done` says slot `i` is computed,
/// the same bit of `val` holds its result. Checks are pure, so a shared check (the
/// `open_read` macro's checks appear in a dozen rules) needs evaluating once per event.
#[derive(Default)]
pub(crate) struct Memo {
    done: [u64; MEMO_WORDS],
    val: [u64; MEMO_WORDS],
}

const MEMO_WORDS: usize = 4;
/// Most memoised checks per event type.
pub(crate) const MEMO_SLOTS: usize = MEMO_WORDS * 64;

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Field(Field),
    Transform(Box<TransformSpec>),
}

#[derive(Clone, Debug)]
pub(crate) struct TransformSpec {
    kind: Transformer,
    args: Vec<TArgC>,
    arg: Option<String>,
}

#[derive(Clone, Debug)]
enum TArgC {
    Op(Operand),
    Str(String),
    List(Vec<TArgC>),
}

/// Small fast hasher for string sets (Fx-style, 8 bytes per step); the sets are
/// fixed at load time from the rules, so hash flooding is not a concern.
#[derive(Default)]
pub(crate) struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = 0u64;
            for (i, b) in rest.iter().enumerate() {
                w |= u64::from(*b) << (8 * i);
            }
            h = (h.rotate_left(5) ^ w ^ (rest.len() as u64) << 59).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}
type FnvSet = HashSet<Box<str>, BuildHasherDefault<Fnv>>;

/// A set of strings for `in`: a filter on length and first/last byte rejects most
/// misses without hashing or comparing; then a short list or a hash set.
#[derive(Clone, Debug)]
struct StrSet {
    /// Bit `min(len, 63)` set for each member length.
    lens: u64,
    /// Bitmaps (256 bits) of the members' first and last bytes.
    first: [u64; 4],
    last: [u64; 4],
    /// Length of the longest member.
    max_len: usize,
    items: StrItems,
}

#[derive(Clone, Debug)]
enum StrItems {
    Small(Vec<Box<str>>),
    Hash(FnvSet),
}

#[inline]
fn byte_bit(map: &[u64; 4], b: u8) -> bool {
    map.get(usize::from(b >> 6))
        .is_some_and(|w| w & (1u64 << (b & 63)) != 0)
}

impl StrSet {
    fn new(items: &[String]) -> StrSet {
        let mut lens = 0u64;
        let (mut first, mut last) = ([0u64; 4], [0u64; 4]);
        for i in items {
            let b = i.as_bytes();
            lens |= 1u64 << b.len().min(63);
            if let (Some(&f), Some(&l)) = (b.first(), b.last()) {
                if let Some(w) = first.get_mut(usize::from(f >> 6)) {
                    *w |= 1u64 << (f & 63);
                }
                if let Some(w) = last.get_mut(usize::from(l >> 6)) {
                    *w |= 1u64 << (l & 63);
                }
            }
        }
        let max_len = items.iter().map(String::len).max().unwrap_or(0);
        let items = if items.len() <= 6 {
            StrItems::Small(items.iter().map(|s| s.as_str().into()).collect())
        } else {
            StrItems::Hash(items.iter().map(|s| s.as_str().into()).collect())
        };
        StrSet {
            lens,
            first,
            last,
            max_len,
            items,
        }
    }
    #[inline]
    fn contains(&self, s: &str) -> bool {
        let b = s.as_bytes();
        if self.lens & (1u64 << b.len().min(63)) == 0 {
            return false;
        }
        if let (Some(&f), Some(&l)) = (b.first(), b.last()) {
            if !byte_bit(&self.first, f) || !byte_bit(&self.last, l) {
                return false;
            }
        }
        match &self.items {
            StrItems::Small(v) => v.iter().any(|x| &**x == s),
            StrItems::Hash(h) => h.contains(s),
        }
    }
    fn len(&self) -> usize {
        match &self.items {
            StrItems::Small(v) => v.len(),
            StrItems::Hash(h) => h.len(),
        }
    }
    /// The members (build time only: merging sets).
    fn members(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match &self.items {
            StrItems::Small(v) => Box::new(v.iter().map(|x| &**x)),
            StrItems::Hash(h) => Box::new(h.iter().map(|x| &**x)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum SOp {
    Eq,
    Ne,
    Contains,
    IContains,
    StartsWith,
    EndsWith,
    Glob,
    IGlob,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum NOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
struct Net {
    ip: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(s: &str) -> Option<Net> {
        let (ip, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Net { ip, prefix })
    }
    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(*a) & mask
            }
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a4| {
                Net {
                    ip: IpAddr::V4(n),
                    prefix: self.prefix,
                }
                .contains(&IpAddr::V4(a4))
            }),
            _ => false,
        }
    }
}

/// Payload of [`Matcher::Affix`] (boxed to keep [`Matcher`] small).
#[derive(Clone, Debug)]
struct Affix {
    set: HashSet<Box<[u8]>, BuildHasherDefault<Fnv>>,
    /// The inner edge byte of every item (first byte of a suffix, last byte of a
    /// prefix): a part whose edge byte is not here is not looked up.
    edge: [u64; 4],
    lens: Vec<usize>,
    n: usize,
    modifier: Modifier,
    suffix: bool,
}

#[derive(Clone, Debug)]
enum Matcher {
    Exists,
    EvtType {
        bits: Box<TypeSet>,
        names: Box<StrSet>,
        negate: bool,
    },
    Str {
        op: SOp,
        needle: Box<str>,
    },
    Regex(regex::Regex),
    InSet {
        set: Box<StrSet>,
        negate: bool,
    },
    /// `pmatch`: the path prefixes (trailing `/` removed), filtered like `in` sets.
    PMatch(Box<StrSet>),
    /// `contains/icontains/startswith <modifier> (...)` with Aho-Corasick.
    Multi {
        ac: AhoCorasick,
        n: usize,
        modifier: Modifier,
    },
    /// `startswith/endswith <modifier> (...)`: prefix (suffix) table keyed by length.
    Affix(Box<Affix>),
    /// Other operators with a modifier: each item tested in turn.
    Each {
        items: Vec<Matcher>,
        modifier: Modifier,
    },
    Num {
        op: NOp,
        rhs: i128,
    },
    NumIn {
        set: Vec<i128>,
    },
    Bool {
        rhs: bool,
        negate: bool,
    },
    Ip {
        nets: Vec<Net>,
        negate: bool,
    },
    Bytes {
        needle: Vec<u8>,
        prefix: bool,
    },
    Field {
        op: Op,
        rhs: Box<Operand>,
    },
    /// Any of these matchers (several checks of one `or` on the same field, merged).
    AnyOf(Vec<Matcher>),
}

// ---------------------------------------------------------------- compile

pub(crate) struct CompileCtx<'a> {
    pub fields_used: &'a mut Vec<String>,
    pub na_check: &'a mut bool,
}

pub(crate) fn compile(e: &Expr, ctx: &mut CompileCtx<'_>) -> Result<Node, CompileError> {
    Ok(match e {
        Expr::And(v) => Node::And(
            v.iter()
                .map(|x| compile(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(v) => Node::Or(
            v.iter()
                .map(|x| compile(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Node::Not(Box::new(compile(x, ctx)?)),
        Expr::Macro { name, pos } => {
            return Err(cerr(
                *pos,
                format!("Undefined macro '{name}' used in filter."),
            ))
        }
        Expr::Check {
            lhs,
            op,
            modifier,
            rhs,
            pos,
        } => Node::Check(Box::new(compile_check(
            lhs, *op, *modifier, rhs, *pos, ctx,
        )?)),
    })
}

fn compile_operand(f: &FieldExpr, ctx: &mut CompileCtx<'_>) -> Result<Operand, CompileError> {
    match f {
        FieldExpr::Field { name, arg, pos } => {
            let field = fields::resolve(name, arg.as_deref(), true).map_err(|m| CompileError {
                pos: *pos,
                unknown_field: m.contains("nonexistent"),
                message: m,
            })?;
            if !ctx.fields_used.contains(&field.text) {
                ctx.fields_used.push(field.text.clone());
            }
            Ok(Operand::Field(field))
        }
        FieldExpr::Transform {
            kind,
            args,
            arg,
            pos,
        } => {
            let args = args
                .iter()
                .map(|a| compile_targ(a, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            let need_one = matches!(
                kind,
                Transformer::ToLower
                    | Transformer::ToUpper
                    | Transformer::B64
                    | Transformer::Basename
                    | Transformer::Len
            );
            if need_one && (args.len() != 1 || !matches!(args.first(), Some(TArgC::Op(_)))) {
                return Err(cerr(
                    *pos,
                    format!("transformer {kind:?} takes exactly one field argument").to_lowercase(),
                ));
            }
            if *kind == Transformer::Getopt && arg.is_none() {
                return Err(cerr(
                    *pos,
                    "getopt(...) needs an option selector, e.g. getopt(proc.args, \"nt:\")[t]",
                ));
            }
            Ok(Operand::Transform(Box::new(TransformSpec {
                kind: *kind,
                args,
                arg: arg.clone(),
            })))
        }
    }
}

fn compile_targ(a: &TArg, ctx: &mut CompileCtx<'_>) -> Result<TArgC, CompileError> {
    Ok(match a {
        TArg::Field(f) => TArgC::Op(compile_operand(f, ctx)?),
        TArg::Str(s) => TArgC::Str(s.clone()),
        TArg::List(v) => TArgC::List(
            v.iter()
                .map(|x| compile_targ(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn operand_type(o: &Operand) -> FieldType {
    match o {
        Operand::Field(f) => f.ty,
        Operand::Transform(t) if t.kind == Transformer::Len => FieldType::Uint,
        Operand::Transform(_) => FieldType::Str,
    }
}

fn compile_check(
    lhs: &FieldExpr,
    op: Op,
    modifier: Option<Modifier>,
    rhs: &Rhs,
    pos: usize,
    ctx: &mut CompileCtx<'_>,
) -> Result<Check, CompileError> {
    let lhs_ast = lhs;
    let lhs = compile_operand(lhs, ctx)?;
    let ty = operand_type(&lhs);
    let na = match rhs {
        Rhs::List(l) => l.iter().any(|v| v == "<NA>"),
        Rhs::Value(v) => v == "<NA>",
        _ => false,
    };
    if na {
        *ctx.na_check = true;
    }
    let m = match (op, rhs) {
        (Op::Exists, _) => Matcher::Exists,
        (_, Rhs::Field(f)) => {
            if modifier.is_some() {
                return Err(cerr(
                    pos,
                    "a oneof/anyof/allof modifier needs a list, not a field",
                ));
            }
            Matcher::Field {
                op,
                rhs: Box::new(compile_operand(f, ctx)?),
            }
        }
        (_, Rhs::None) => return Err(cerr(pos, format!("operator '{}' needs a value", op.name()))),
        (_, Rhs::Value(v)) => scalar_matcher(op, v, ty, &lhs, pos)?,
        (_, Rhs::List(items)) => list_matcher(op, modifier, items, ty, &lhs, pos)?,
    };
    let key = check_key(lhs_ast, op, modifier, rhs);
    let fast = Fast::of(&lhs);
    Ok(Check {
        kernel: Kernel::of_check(&lhs, fast, &m, ty),
        fast,
        lhs,
        m,
        key,
        slot: NO_SLOT,
    })
}

/// Position-free identity of a check: two checks with the same key compile to the
/// same matcher, so they have the same value on every event.
fn check_key(lhs: &FieldExpr, op: Op, modifier: Option<Modifier>, rhs: &Rhs) -> Box<str> {
    fn strip(f: &FieldExpr) -> FieldExpr {
        match f {
            FieldExpr::Field { name, arg, .. } => FieldExpr::Field {
                name: name.clone(),
                arg: arg.clone(),
                pos: 0,
            },
            FieldExpr::Transform {
                kind, args, arg, ..
            } => FieldExpr::Transform {
                kind: *kind,
                args: args.iter().map(strip_arg).collect(),
                arg: arg.clone(),
                pos: 0,
            },
        }
    }
    fn strip_arg(a: &TArg) -> TArg {
        match a {
            TArg::Field(f) => TArg::Field(strip(f)),
            TArg::Str(s) => TArg::Str(s.clone()),
            TArg::List(v) => TArg::List(v.iter().map(strip_arg).collect()),
        }
    }
    let rhs = match rhs {
        Rhs::Field(f) => Rhs::Field(strip(f)),
        other => other.clone(),
    };
    format!("{:?} {op:?} {modifier:?} {rhs:?}", strip(lhs)).into_boxed_str()
}

fn is_evt_type(o: &Operand) -> bool {
    matches!(
        o,
        Operand::Field(Field {
            kind: Kind::EvtType,
            ..
        })
    )
}

fn evt_type_matcher(items: &[String], negate: bool) -> Matcher {
    let mut bits = TypeSet::empty();
    for n in items {
        if let Some(t) = EventType::from_name(n) {
            bits.insert(t.index());
        }
    }
    Matcher::EvtType {
        bits: Box::new(bits),
        names: Box::new(StrSet::new(items)),
        negate,
    }
}

fn parse_num(v: &str, pos: usize) -> Result<i128, CompileError> {
    fields::parse_number(v).ok_or_else(|| cerr(pos, format!("'{v}' is not a valid number")))
}

fn parse_bool(v: &str, pos: usize) -> Result<bool, CompileError> {
    match v {
        "true" | "TRUE" | "True" | "1" => Ok(true),
        "false" | "FALSE" | "False" | "0" => Ok(false),
        _ => Err(cerr(
            pos,
            format!("'{v}' is not a valid boolean (use true or false)"),
        )),
    }
}

fn parse_net(v: &str, pos: usize) -> Result<Net, CompileError> {
    Net::parse(v).ok_or_else(|| {
        cerr(
            pos,
            format!("'{v}' is not a valid IP address or CIDR network"),
        )
    })
}

fn decode_hex(v: &str, pos: usize) -> Result<Vec<u8>, CompileError> {
    let b = v.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(cerr(
            pos,
            format!("'{v}' is not a valid hex string (bcontains/bstartswith take hex bytes)"),
        ));
    }
    b.chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| {
            cerr(
                pos,
                format!("'{v}' is not a valid hex string (bcontains/bstartswith take hex bytes)"),
            )
        })
}

fn num_op(op: Op) -> Option<NOp> {
    Some(match op {
        Op::Eq => NOp::Eq,
        Op::Ne => NOp::Ne,
        Op::Lt => NOp::Lt,
        Op::Le => NOp::Le,
        Op::Gt => NOp::Gt,
        Op::Ge => NOp::Ge,
        _ => return None,
    })
}

fn scalar_matcher(
    op: Op,
    v: &str,
    ty: FieldType,
    lhs: &Operand,
    pos: usize,
) -> Result<Matcher, CompileError> {
    if op.is_list_op() {
        // `in` with a single bare value is not valid syntax; the parser prevents it.
        return Err(cerr(pos, format!("operator '{}' needs a list", op.name())));
    }
    if is_evt_type(lhs) && matches!(op, Op::Eq | Op::Ne) {
        return Ok(evt_type_matcher(&[v.to_owned()], op == Op::Ne));
    }
    match (op, ty) {
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, _)
        | (Op::Eq | Op::Ne, FieldType::Int | FieldType::Uint | FieldType::AbsTime) => {
            if let Some(n) = num_op(op) {
                return Ok(Matcher::Num {
                    op: n,
                    rhs: parse_num(v, pos)?,
                });
            }
        }
        (Op::Eq | Op::Ne, FieldType::Bool) => {
            return Ok(Matcher::Bool {
                rhs: parse_bool(v, pos)?,
                negate: op == Op::Ne,
            })
        }
        (Op::Eq | Op::Ne, FieldType::Ip | FieldType::Net) => {
            return Ok(Matcher::Ip {
                nets: vec![parse_net(v, pos)?],
                negate: op == Op::Ne,
            })
        }
        _ => {}
    }
    Ok(match op {
        Op::Eq => Matcher::Str {
            op: SOp::Eq,
            needle: v.into(),
        },
        Op::Ne => Matcher::Str {
            op: SOp::Ne,
            needle: v.into(),
        },
        Op::Contains => Matcher::Str {
            op: SOp::Contains,
            needle: v.into(),
        },
        Op::IContains => Matcher::Str {
            op: SOp::IContains,
            needle: v.to_ascii_lowercase().into(),
        },
        Op::StartsWith => Matcher::Str {
            op: SOp::StartsWith,
            needle: v.into(),
        },
        Op::EndsWith => Matcher::Str {
            op: SOp::EndsWith,
            needle: v.into(),
        },
        Op::Glob => Matcher::Str {
            op: SOp::Glob,
            needle: v.into(),
        },
        Op::IGlob => Matcher::Str {
            op: SOp::IGlob,
            needle: v.into(),
        },
        Op::BContains => Matcher::Bytes {
            needle: decode_hex(v, pos)?,
            prefix: false,
        },
        Op::BStartsWith => Matcher::Bytes {
            needle: decode_hex(v, pos)?,
            prefix: true,
        },
        Op::Regex => {
            let re = regex::RegexBuilder::new(&format!("^(?:{v})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| cerr(pos, format!("invalid regular expression '{v}': {e}")))?;
            Matcher::Regex(re)
        }
        _ => {
            return Err(cerr(
                pos,
                format!("operator '{}' is not supported here", op.name()),
            ))
        }
    })
}

fn list_matcher(
    op: Op,
    modifier: Option<Modifier>,
    items: &[String],
    ty: FieldType,
    lhs: &Operand,
    pos: usize,
) -> Result<Matcher, CompileError> {
    let set_like = match (op, modifier) {
        (Op::In | Op::Intersects, None) | (Op::Eq, Some(Modifier::AnyOf)) => Some(false),
        (Op::Ne, Some(Modifier::AllOf)) => Some(true),
        _ => None,
    };
    if let Some(negate) = set_like {
        if is_evt_type(lhs) {
            return Ok(evt_type_matcher(items, negate));
        }
        return Ok(match ty {
            FieldType::Int | FieldType::Uint | FieldType::AbsTime if !negate => Matcher::NumIn {
                set: items
                    .iter()
                    .map(|v| parse_num(v, pos))
                    .collect::<Result<_, _>>()?,
            },
            FieldType::Ip | FieldType::Net => Matcher::Ip {
                nets: items
                    .iter()
                    .map(|v| parse_net(v, pos))
                    .collect::<Result<_, _>>()?,
                negate,
            },
            _ => Matcher::InSet {
                set: Box::new(StrSet::new(items)),
                negate,
            },
        });
    }
    if op == Op::PMatch {
        let mut set: Vec<String> = Vec::new();
        for i in items {
            let t = i.trim_end_matches('/');
            let t = if t.is_empty() { "/" } else { t };
            if !set.iter().any(|x| x == t) {
                set.push(t.to_owned());
            }
        }
        return Ok(Matcher::PMatch(Box::new(StrSet::new(&set))));
    }
    let Some(modifier) = modifier else {
        return Err(cerr(
            pos,
            format!(
                "operator '{}' does not take a list; use 'in' or a oneof/anyof/allof modifier",
                op.name()
            ),
        ));
    };
    if matches!(op, Op::StartsWith | Op::EndsWith) && matches!(ty, FieldType::Str) {
        let mut set: HashSet<Box<[u8]>, BuildHasherDefault<Fnv>> = HashSet::default();
        let mut lens = Vec::new();
        let mut edge = [0u64; 4];
        let suffix = op == Op::EndsWith;
        for i in items {
            let b = i.as_bytes();
            if let Some(&c) = if suffix { b.first() } else { b.last() } {
                if let Some(w) = edge.get_mut(usize::from(c >> 6)) {
                    *w |= 1u64 << (c & 63);
                }
            }
            set.insert(i.as_bytes().into());
            if !lens.contains(&i.len()) {
                lens.push(i.len());
            }
        }
        lens.sort_unstable();
        return Ok(Matcher::Affix(Box::new(Affix {
            n: set.len(),
            set,
            edge,
            lens,
            modifier,
            suffix,
        })));
    }
    if matches!(op, Op::Contains | Op::IContains)
        && matches!(ty, FieldType::Str)
        && !items.is_empty()
    {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(op == Op::IContains)
            .match_kind(MatchKind::Standard)
            .build(items)
            .map_err(|e| cerr(pos, format!("cannot build matcher: {e}")))?;
        return Ok(Matcher::Multi {
            ac,
            n: items.len(),
            modifier,
        });
    }
    let items = items
        .iter()
        .map(|v| scalar_matcher(op, v, ty, lhs, pos))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Matcher::Each { items, modifier })
}

// ---------------------------------------------------------------- specialisation

/// Result of folding a node for a known event type.
pub(crate) enum Folded {
    /// The node has this value for every event of the type.
    Const(bool),
    /// The node still depends on the event.
    Node(Node),
}

impl Node {
    /// Specialise the tree for events of type `t` (`None`: type not known in advance):
    /// `evt.type` checks become constants and are folded away, nested `and`/`or` are
    /// flattened, and the children of every `and`/`or` are ordered cheapest first.
    ///
    /// Checks are pure functions of the event, so neither folding nor reordering can
    /// change the result; only the work done to reach it.
    pub(crate) fn specialize(&self, t: Option<EventType>) -> Folded {
        match self {
            Node::Check(c) | Node::Memo(_, c) => {
                if let (Some(t), Operand::Field(_), Matcher::EvtType { bits, negate, .. }) =
                    (t, &c.lhs, &c.m)
                {
                    if t != EventType::UNKNOWN {
                        return Folded::Const(bits.contains(t.index()) != *negate);
                    }
                }
                // `x in ()` (an empty list users are meant to extend) is false on every
                // event, whatever x is; its negated forms are not constant (false when x
                // is missing), so they stay.
                match &c.m {
                    Matcher::InSet { set, negate: false } if set.len() == 0 => {
                        return Folded::Const(false)
                    }
                    Matcher::Ip {
                        nets,
                        negate: false,
                    } if nets.is_empty() => return Folded::Const(false),
                    Matcher::NumIn { set } if set.is_empty() => return Folded::Const(false),
                    _ => {}
                }
                Folded::Node(self.clone())
            }
            Node::Not(x) => match x.specialize(t) {
                Folded::Const(b) => Folded::Const(!b),
                Folded::Node(Node::Not(inner)) => Folded::Node(*inner),
                Folded::Node(n) => Folded::Node(Node::Not(Box::new(n))),
            },
            Node::And(v) | Node::Or(v) => {
                let is_and = matches!(self, Node::And(_));
                let mut out: Vec<Node> = Vec::with_capacity(v.len());
                for c in v.iter() {
                    match c.specialize(t) {
                        // false in an `and` (true in an `or`) decides the whole node
                        Folded::Const(b) if b != is_and => return Folded::Const(b),
                        Folded::Const(_) => {}
                        Folded::Node(Node::And(inner)) if is_and => out.extend(inner.into_vec()),
                        Folded::Node(Node::Or(inner)) if !is_and => out.extend(inner.into_vec()),
                        Folded::Node(n) => out.push(n),
                    }
                }
                if out.is_empty() {
                    return Folded::Const(is_and);
                }
                if out.len() == 1 {
                    if let Some(n) = out.pop() {
                        return Folded::Node(n);
                    }
                }
                if !is_and {
                    out = merge_same_operand(out);
                }
                // Order by expected cost per decision: an `and` wants cheap children that
                // are likely false first, an `or` cheap children likely true.
                let mut keyed: Vec<(f64, Node)> = out
                    .into_iter()
                    .map(|n| {
                        let (c, p) = n.estimate();
                        let decide = if is_and { 1.0 - p } else { p };
                        (c / decide.max(1e-3), n)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                let out: Vec<Node> = keyed.into_iter().map(|(_, n)| n).collect();
                let b = out.into_boxed_slice();
                Folded::Node(if is_and { Node::And(b) } else { Node::Or(b) })
            }
        }
    }

    /// The operand and matchers when this node is a check that can merge with
    /// others on the same plain field.
    fn mergeable(&self) -> Option<&Check> {
        match self {
            Node::Check(c) | Node::Memo(_, c)
                if matches!(c.lhs, Operand::Field(_))
                    && !matches!(c.m, Matcher::EvtType { .. }) =>
            {
                Some(c)
            }
            _ => None,
        }
    }

    /// Rough (expected evaluation cost, probability of being true), for ordering
    /// siblings: not measured, only the resulting order matters.
    fn estimate(&self) -> (f64, f64) {
        match self {
            Node::And(v) | Node::Or(v) => {
                let is_and = matches!(self, Node::And(_));
                // probability that evaluation reaches the next child
                let (mut cost, mut reach) = (0.0, 1.0);
                for c in v.iter() {
                    let (cc, p) = c.estimate();
                    cost += reach * cc;
                    reach *= if is_and { p } else { 1.0 - p };
                }
                (cost, if is_and { reach } else { 1.0 - reach })
            }
            Node::Not(x) => {
                let (c, p) = x.estimate();
                (c, 1.0 - p)
            }
            Node::Check(c) | Node::Memo(_, c) => (f64::from(c.cost()), c.p_true()),
        }
    }
}

/// Merge the checks of an `or` that read the same field into one check with a
/// [`Matcher::AnyOf`]: the field is read once and each value tried against every
/// matcher. Exact: `any(check_i) = any over values v of any_i(test_i(v))`, and a
/// missing field makes both false.
fn merge_same_operand(nodes: Vec<Node>) -> Vec<Node> {
    // group[i]: index of the first node reading the same field as node i
    let mut group: Vec<Option<usize>> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let g = n.mergeable().and_then(|c| {
            let Operand::Field(f) = &c.lhs else {
                return None;
            };
            (0..i).find(|&j| {
                group.get(j).copied().flatten() == Some(j)
                    && nodes.get(j).and_then(Node::mergeable).is_some_and(
                        |d| matches!(&d.lhs, Operand::Field(h) if h.kind == f.kind && h.ty == f.ty),
                    )
            })
        });
        group.push(match (g, n.mergeable()) {
            (Some(j), _) => Some(j),
            (None, Some(_)) => Some(i),
            (None, None) => None,
        });
    }
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        match group.get(i).copied().flatten() {
            Some(j) if j != i => {} // merged into node j
            Some(_) => {
                let members: Vec<&Check> = nodes
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| group.get(*k).copied().flatten() == Some(i))
                    .filter_map(|(_, m)| m.mergeable())
                    .collect();
                match members.as_slice() {
                    [first, _, ..] => {
                        let key: Vec<&str> = members.iter().map(|c| &*c.key).collect();
                        let m = Matcher::AnyOf(members.iter().map(|c| c.m.clone()).collect());
                        out.push(Node::Check(Box::new(Check {
                            kernel: Kernel::of(first.fast, &m, operand_type(&first.lhs)),
                            fast: first.fast,
                            lhs: first.lhs.clone(),
                            m,
                            key: format!("anyof[{}]", key.join(" | ")).into_boxed_str(),
                            slot: NO_SLOT,
                        })));
                    }
                    _ => out.push(n.clone()),
                }
            }
            None => out.push(n.clone()),
        }
    }
    out
}

impl Check {
    /// Guessed probability that the check is true on an event that reaches it:
    /// equality and membership against constants are selective, their negations not.
    fn p_true(&self) -> f64 {
        match &self.m {
            Matcher::Exists => 0.9,
            Matcher::EvtType { negate: true, .. }
            | Matcher::InSet { negate: true, .. }
            | Matcher::Ip { negate: true, .. } => 0.9,
            Matcher::Bool { .. } => 0.5,
            Matcher::AnyOf(ms) => (0.1 * ms.len() as f64).min(0.9),
            Matcher::Num { op: NOp::Eq, .. } => 0.2,
            Matcher::Num { op: NOp::Ne, .. } => 0.8,
            Matcher::Num { .. } => 0.5,
            Matcher::Str { op: SOp::Ne, .. } => 0.9,
            _ => 0.1,
        }
    }

    fn cost(&self) -> u32 {
        let field = match &self.lhs {
            Operand::Field(f) => match &f.kind {
                Kind::EvtType | Kind::EvtDir | Kind::EvtRawres | Kind::EvtFailed => 1,
                Kind::EvtIsOpenRead
                | Kind::EvtIsOpenWrite
                | Kind::EvtIsOpenCreate
                | Kind::EvtRes => 1,
                Kind::Proc(..) | Kind::Fd(_) | Kind::User(_) | Kind::Container(_) => 2,
                Kind::FdTypechar | Kind::FdServer(_) | Kind::FdClient(_) => 2,
                Kind::EvtArg(_) | Kind::EvtRawArg(_) | Kind::FdLocal(..) => 4,
                Kind::FdEither(_) | Kind::EvtIsOpenExec => 5,
                Kind::AnyAncestor(_) => 12,
                _ => 8,
            },
            Operand::Transform(_) => 40,
        };
        let m = match &self.m {
            Matcher::Exists | Matcher::EvtType { .. } | Matcher::Bool { .. } => 1,
            Matcher::Num { .. } => 1,
            Matcher::NumIn { set } => 1 + (set.len() as u32) / 4,
            Matcher::Ip { nets, .. } => 2 + nets.len() as u32,
            Matcher::Str { op, .. } => match op {
                SOp::Eq | SOp::Ne | SOp::StartsWith | SOp::EndsWith => 2,
                SOp::Contains | SOp::IContains => 6,
                SOp::Glob | SOp::IGlob => 8,
            },
            Matcher::InSet { set, .. } => 2 + (set.len() as u32).min(6) / 2,
            Matcher::Affix(a) => 3 + a.lens.len() as u32,
            Matcher::PMatch(_) => 10,
            Matcher::Multi { .. } | Matcher::Bytes { .. } => 12,
            Matcher::Each { items, .. } => 2 * items.len() as u32,
            Matcher::Regex(_) => 30,
            Matcher::Field { .. } => 40,
            Matcher::AnyOf(ms) => ms.len() as u32 * 3,
        };
        field * m
    }
}

// ---------------------------------------------------------------- evaluation

impl Node {
    /// Evaluate, reusing (and filling) `memo` for checks with a slot; `memo` must be
    /// fresh for each event.
    #[inline]
    pub(crate) fn eval<E: Event + ?Sized>(&self, e: &E, memo: &mut Memo) -> bool {
        match self {
            Node::And(v) => v.iter().all(|n| n.eval(e, memo)),
            Node::Or(v) => v.iter().any(|n| n.eval(e, memo)),
            Node::Not(n) => !n.eval(e, memo),
            Node::Check(c) => c.eval(e),
            Node::Memo(slot, c) => {
                let (w, bit) = (usize::from(*slot) / 64, 1u64 << (*slot % 64));
                match (memo.done.get_mut(w), memo.val.get_mut(w)) {
                    (Some(d), Some(v)) => {
                        if *d & bit != 0 {
                            return *v & bit != 0;
                        }
                        let r = c.eval(e);
                        *d |= bit;
                        if r {
                            *v |= bit;
                        }
                        r
                    }
                    _ => c.eval(e),
                }
            }
        }
    }

    /// Reference evaluation for tests: no memo, no fast paths.
    #[cfg(test)]
    pub(crate) fn eval_reference<E: Event + ?Sized>(&self, e: &E) -> bool {
        match self {
            Node::And(v) => v.iter().all(|n| n.eval_reference(e)),
            Node::Or(v) => v.iter().any(|n| n.eval_reference(e)),
            Node::Not(n) => !n.eval_reference(e),
            Node::Check(c) | Node::Memo(_, c) => c.eval_generic(e),
        }
    }

    /// Give a memo slot to every check whose key occurs at least twice in `nodes`
    /// (the trees one event type meets), up to [`MEMO_SLOTS`].
    pub(crate) fn assign_slots<'n>(nodes: impl Iterator<Item = &'n mut Node>) {
        let mut count: std::collections::HashMap<Box<str>, (usize, u16)> =
            std::collections::HashMap::new();
        fn walk(n: &Node, f: &mut dyn FnMut(&Check)) {
            match n {
                Node::And(v) | Node::Or(v) => v.iter().for_each(|c| walk(c, f)),
                Node::Not(x) => walk(x, f),
                Node::Check(c) | Node::Memo(_, c) => f(c),
            }
        }
        fn walk_mut(n: &mut Node, f: &mut dyn FnMut(&mut Check)) {
            match n {
                Node::And(v) | Node::Or(v) => v.iter_mut().for_each(|c| walk_mut(c, f)),
                Node::Not(x) => walk_mut(x, f),
                Node::Check(c) | Node::Memo(_, c) => {
                    f(c);
                    // move the slot into the node, where eval reads it
                    let slot = c.slot;
                    let placeholder = Node::And(Box::new([]));
                    let (Node::Check(b) | Node::Memo(_, b)) = std::mem::replace(n, placeholder)
                    else {
                        return;
                    };
                    *n = if slot == NO_SLOT {
                        Node::Check(b)
                    } else {
                        Node::Memo(slot, b)
                    };
                }
            }
        }
        let nodes: Vec<&mut Node> = nodes.collect();
        for n in &nodes {
            walk(n, &mut |c| {
                count.entry(c.key.clone()).or_insert((0, NO_SLOT)).0 += 1
            });
        }
        let mut next: u16 = 0;
        for n in nodes {
            walk_mut(n, &mut |c| {
                c.slot = NO_SLOT;
                if let Some((k, slot)) = count.get_mut(&c.key) {
                    if *k >= 2 {
                        if *slot == NO_SLOT && usize::from(next) < MEMO_SLOTS {
                            *slot = next;
                            next += 1;
                        }
                        c.slot = *slot;
                    }
                }
            });
        }
    }
}

/// Where a [`Step`] goes next: another step's index, or one of these two ends.
const END_TRUE: u32 = u32::MAX;
const END_FALSE: u32 = u32::MAX - 1;

/// One check of a [`Flat`] plan and where to go after it (16 bytes, four to a cache
/// line).
#[derive(Clone, Copy, Debug)]
struct Step {
    /// Index in [`Flat::checks`].
    check: u32,
    /// Memo slot of a check shared with other rules, or [`NO_SLOT`].
    slot: u16,
    /// The next step when the check is true, or [`END_TRUE`]/[`END_FALSE`].
    on_true: u32,
    /// The next step when the check is false.
    on_false: u32,
}

const _: () = assert!(std::mem::size_of::<Step>() == 16);

/// The plans of all rules of one event type compiled to branch programs, the way a
/// compiler lowers `&&`/`||`/`!`: each check knows where evaluation continues when
/// it is true and when it is false, so an `and` that meets a false child jumps
/// straight past its siblings, a `not` swaps the two targets, and evaluating a rule
/// is one loop over steps, with no recursion, no stack and no `and`/`or` nodes at
/// all. The checks are visited in exactly the order (and with exactly the
/// short-circuits) of the tree the plan came from. The checks live in one array,
/// a memoised check stored once for all the rules that share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flat {
    steps: Vec<Step>,
    checks: Vec<Check>,
    /// Check index of each memo slot already stored.
    memo_checks: std::collections::HashMap<u16, u32>,
}

impl Flat {
    /// Append the plan `n`; returns its entry, for [`Flat::eval`].
    pub(crate) fn push(&mut self, n: &Node) -> u32 {
        // Steps are emitted last-first (a check's targets must exist before it), then
        // reversed so that the steps of a rule lie in evaluation order in memory.
        let first = self.steps.len();
        let entry = self.emit(n, END_TRUE, END_FALSE);
        let last = self.steps.len();
        let flip = |i: u32| -> u32 {
            let i = i as usize;
            if (first..last).contains(&i) {
                (first + last - 1 - i) as u32
            } else {
                i as u32
            }
        };
        if let Some(new) = self.steps.get_mut(first..last) {
            new.reverse();
            for s in new {
                s.on_true = flip(s.on_true);
                s.on_false = flip(s.on_false);
            }
        }
        flip(entry)
    }

    /// Emit the steps of `n` given where to go when it is true (`t`) or false (`f`);
    /// returns the step (or end) where `n` starts.
    fn emit(&mut self, n: &Node, t: u32, f: u32) -> u32 {
        match n {
            Node::And(v) => {
                // each child continues to the next one when true, to `f` when false
                let mut next = t;
                for c in v.iter().rev() {
                    next = self.emit(c, next, f);
                }
                next
            }
            Node::Or(v) => {
                let mut next = f;
                for c in v.iter().rev() {
                    next = self.emit(c, t, next);
                }
                next
            }
            Node::Not(x) => self.emit(x, f, t),
            Node::Check(c) => {
                let ci = self.checks.len() as u32;
                self.checks.push((**c).clone());
                self.step(ci, NO_SLOT, t, f)
            }
            Node::Memo(slot, c) => {
                let ci = match self.memo_checks.get(slot) {
                    Some(&ci) => ci,
                    None => {
                        let ci = self.checks.len() as u32;
                        self.checks.push((**c).clone());
                        self.memo_checks.insert(*slot, ci);
                        ci
                    }
                };
                self.step(ci, *slot, t, f)
            }
        }
    }

    fn step(&mut self, check: u32, slot: u16, on_true: u32, on_false: u32) -> u32 {
        let i = self.steps.len() as u32;
        self.steps.push(Step {
            check,
            slot,
            on_true,
            on_false,
        });
        i
    }

    /// Done adding plans: release the build-time index.
    pub(crate) fn finish(&mut self) {
        self.memo_checks = Default::default();
        self.steps.shrink_to_fit();
        self.checks.shrink_to_fit();
    }

    /// Evaluate the plan entered at `entry` (as [`Node::eval`] would the tree it came
    /// from).
    #[inline]
    pub(crate) fn eval<E: Event + ?Sized>(&self, entry: u32, e: &E, memo: &mut Memo) -> bool {
        let mut i = entry;
        // each step moves forward in its rule's steps, so this ends; `None` (an end
        // or a corrupt index) stops it
        while let Some(st) = self.steps.get(i as usize) {
            let r = if st.slot == NO_SLOT {
                self.check(st, e)
            } else {
                self.memoised(st, e, memo)
            };
            i = if r { st.on_true } else { st.on_false };
        }
        i == END_TRUE
    }

    /// A shared check, through the memo.
    #[inline(always)]
    fn memoised<E: Event + ?Sized>(&self, st: &Step, e: &E, memo: &mut Memo) -> bool {
        let (w, bit) = (usize::from(st.slot) / 64, 1u64 << (st.slot % 64));
        match (memo.done.get_mut(w), memo.val.get_mut(w)) {
            (Some(d), Some(v)) => {
                if *d & bit != 0 {
                    return *v & bit != 0;
                }
                let r = self.check(st, e);
                *d |= bit;
                if r {
                    *v |= bit;
                }
                r
            }
            _ => self.check(st, e),
        }
    }

    #[inline(always)]
    fn check<E: Event + ?Sized>(&self, st: &Step, e: &E) -> bool {
        let Some(c) = self.checks.get(st.check as usize) else {
            return false;
        };
        c.eval(e)
    }
}

impl Check {
    /// The check's value on `e`: the specialised kernel when there is one.
    ///
    /// One call per check: not inlined into the plan loop (measured: with every
    /// kernel inlined there, the loop runs more instructions, not fewer).
    #[inline(never)]
    fn eval<E: Event + ?Sized>(&self, e: &E) -> bool {
        let src = self.fast;
        match &self.kernel {
            Kernel::Str(t) => match src.read(e) {
                Some(Some(Value::Str(s))) => t.test(s),
                Some(None) => false,
                _ => self.eval_unfused(e),
            },
            Kernel::Bool { rhs, negate } => match src.read(e) {
                Some(Some(Value::Bool(b))) => (b == *rhs) != *negate,
                Some(None) => false,
                _ => self.eval_unfused(e),
            },
            Kernel::Num { op, rhs } => match src.read(e) {
                Some(Some(Value::Uint(u))) => num_cmp(*op, i128::from(u), *rhs),
                Some(Some(Value::Int(i))) => num_cmp(*op, i128::from(i), *rhs),
                Some(None) => false,
                _ => self.eval_unfused(e),
            },
            Kernel::NumIn(set) => match src.read(e) {
                Some(Some(Value::Uint(u))) => set.contains(&i128::from(u)),
                Some(Some(Value::Int(i))) => set.contains(&i128::from(i)),
                Some(None) => false,
                _ => self.eval_unfused(e),
            },
            Kernel::Value => match src.read(e) {
                Some(v) => self.test_value(v, e),
                None => self.eval_unfused(e),
            },
            Kernel::AnyAncestor(..) | Kernel::Arg(..) | Kernel::Lower(_) | Kernel::Generic => {
                self.eval_other(e)
            }
        }
    }

    /// The kernels that do not read one plain attribute.
    #[inline(never)]
    fn eval_other<E: Event + ?Sized>(&self, e: &E) -> bool {
        match &self.kernel {
            Kernel::AnyAncestor(attr, t) => {
                // as `fields::any_value`: levels 1.. until the first unknown one
                for level in 1..=fields::MAX_ANCESTORS {
                    let hit = match e.proc(level, *attr) {
                        None => break,
                        Some(Value::Str(s)) => t.test(s),
                        Some(v) => self.m.test(&Val::from(v), e),
                    };
                    if hit {
                        return true;
                    }
                }
                false
            }
            Kernel::Arg(name, t) => match e.arg(name) {
                Some(Value::Str(s)) => t.test(s),
                None => false,
                Some(_) => self.eval_unfused(e),
            },
            Kernel::Lower(src) => self.eval_lower(*src, e),
            _ => self.eval_unfused(e),
        }
    }

    /// [`Kernel::Lower`]: `tolower` of a short ASCII value without allocating.
    #[inline(never)]
    fn eval_lower<E: Event + ?Sized>(&self, src: Fast, e: &E) -> bool {
        let mut buf = [0u8; 256];
        match src.read(e) {
            Some(None) => false,
            Some(Some(Value::Str(s))) if s.is_ascii() && s.len() <= buf.len() => {
                let Some(low) = buf.get_mut(..s.len()) else {
                    return self.eval_unfused(e);
                };
                for (d, c) in low.iter_mut().zip(s.bytes()) {
                    *d = c.to_ascii_lowercase();
                }
                match std::str::from_utf8(low) {
                    Ok(l) => self.m.test(&Val::Str(Cow::Borrowed(l)), e),
                    Err(_) => self.eval_unfused(e),
                }
            }
            _ => self.eval_unfused(e),
        }
    }

    /// The check without its kernel: the fast attribute read, else the generic path.
    #[inline(never)]
    fn eval_unfused<E: Event + ?Sized>(&self, e: &E) -> bool {
        // Fast path: plain attributes read straight from the event (text tested as
        // &str), without the generic extraction and value conversion.
        let direct = match self.fast {
            Fast::AnyAncestor(attr) => {
                // as `fields::any_value`: levels 1.. until the first unknown one
                for level in 1..=fields::MAX_ANCESTORS {
                    let hit = match e.proc(level, attr) {
                        None => break,
                        Some(Value::Str(s)) => self.m.test_str(s, e),
                        Some(v) => self.m.test(&Val::from(v), e),
                    };
                    if hit {
                        return true;
                    }
                }
                return false;
            }
            f => f.read(e),
        };
        if let Some(v) = direct {
            return self.test_value(v, e);
        }
        self.eval_generic(e)
    }

    /// The check on its field's value (`None`: the field is missing).
    #[inline]
    fn test_value<E: Event + ?Sized>(&self, v: Option<Value<'_>>, e: &E) -> bool {
        match (v, &self.m) {
            // a missing value fails every check, `exists` included
            (None, _) => false,
            (Some(_), Matcher::Exists) => true,
            (Some(Value::Str(s)), m) => m.test_str(s, e),
            (Some(v), m) => m.test(&Val::from(v), e),
        }
    }

    /// Evaluation through the generic field extraction ([`fields::any_value`]).
    fn eval_generic<E: Event + ?Sized>(&self, e: &E) -> bool {
        match &self.lhs {
            Operand::Field(f) => {
                if let Matcher::EvtType {
                    bits,
                    names,
                    negate,
                } = &self.m
                {
                    let t = e.event_type();
                    let hit = if t == EventType::UNKNOWN {
                        names.contains(e.event_type_name())
                    } else {
                        bits.contains(t.index())
                    };
                    return hit != *negate;
                }
                if let Matcher::Exists = self.m {
                    return fields::any_value(&f.kind, e, |_| true).is_some();
                }
                fields::any_value(&f.kind, e, |v| self.m.test(v, e)).unwrap_or(false)
            }
            Operand::Transform(t) => {
                let vals = t.eval(e);
                if let Matcher::Exists = self.m {
                    return !vals.is_empty();
                }
                vals.iter().any(|v| self.m.test(v, e))
            }
        }
    }
}

impl Operand {
    /// All values of the operand (one for plain fields, several for any-ancestor).
    pub(crate) fn values<'a, E: Event + ?Sized>(&self, e: &'a E) -> Vec<Val<'a>> {
        match self {
            Operand::Field(f) => {
                let mut out = Vec::new();
                fields::any_value(&f.kind, e, |v| {
                    out.push(v.clone());
                    false
                });
                out
            }
            Operand::Transform(t) => t.eval(e),
        }
    }
}

fn owned<'a>(s: String) -> Val<'a> {
    Val::Str(Cow::Owned(s))
}

impl TransformSpec {
    fn eval<'a, E: Event + ?Sized>(&self, e: &'a E) -> Vec<Val<'a>> {
        let first = |e: &'a E| -> Vec<Val<'a>> {
            match self.args.first() {
                Some(TArgC::Op(o)) => o.values(e),
                _ => Vec::new(),
            }
        };
        match self.kind {
            Transformer::ToLower => first(e)
                .into_iter()
                .map(|v| owned(v.to_text().to_lowercase()))
                .collect(),
            Transformer::ToUpper => first(e)
                .into_iter()
                .map(|v| owned(v.to_text().to_uppercase()))
                .collect(),
            Transformer::Basename => first(e)
                .into_iter()
                .map(|v| {
                    let t = v.to_text();
                    owned(t.rsplit('/').next().unwrap_or("").to_owned())
                })
                .collect(),
            Transformer::Len => first(e)
                .into_iter()
                .map(|v| match &v {
                    Val::Bytes(b) => Val::Uint(b.len() as u64),
                    other => Val::Uint(other.to_text().len() as u64),
                })
                .collect(),
            Transformer::B64 => {
                use base64::Engine as _;
                first(e)
                    .into_iter()
                    .filter_map(|v| {
                        let t = v.to_text();
                        let d = base64::engine::general_purpose::STANDARD
                            .decode(t.trim().as_bytes())
                            .ok()?;
                        Some(match String::from_utf8(d) {
                            Ok(s) => owned(s),
                            Err(err) => Val::Bytes(Cow::Owned(err.into_bytes())),
                        })
                    })
                    .collect()
            }
            Transformer::Concat | Transformer::Join => {
                let (sep, rest): (String, &[TArgC]) = if self.kind == Transformer::Join {
                    match self.args.split_first() {
                        Some((TArgC::Str(s), rest)) => (s.clone(), rest),
                        _ => return Vec::new(),
                    }
                } else {
                    (String::new(), &self.args[..])
                };
                let mut parts = Vec::new();
                flatten_targs(rest, e, &mut parts);
                if parts.is_empty() {
                    return Vec::new();
                }
                vec![owned(parts.join(&sep))]
            }
            Transformer::Getopt => {
                let Some(sel) = &self.arg else {
                    return Vec::new();
                };
                let (Some(TArgC::Op(o)), Some(TArgC::Str(spec))) =
                    (self.args.first(), self.args.get(1))
                else {
                    return Vec::new();
                };
                let args: Vec<String> = o
                    .values(e)
                    .iter()
                    .map(|v| v.to_text().into_owned())
                    .collect();
                let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
                getopt(&words, spec, sel).into_iter().map(owned).collect()
            }
        }
    }
}

fn flatten_targs<E: Event + ?Sized>(args: &[TArgC], e: &E, out: &mut Vec<String>) {
    for a in args {
        match a {
            TArgC::Str(s) => out.push(s.clone()),
            TArgC::Op(o) => {
                for v in o.values(e) {
                    out.push(v.to_text().into_owned());
                }
            }
            TArgC::List(l) => flatten_targs(l, e, out),
        }
    }
}

/// POSIX getopt over `words` with option string `spec`; the value of option `sel`
/// (or `"true"`-less presence as an empty string for flags).
fn getopt(words: &[&str], spec: &str, sel: &str) -> Option<String> {
    let spec = spec.as_bytes();
    let takes_arg = |c: u8| {
        spec.iter()
            .position(|&s| s == c)
            .is_some_and(|i| spec.get(i + 1) == Some(&b':'))
    };
    let mut i = 0;
    let mut result = None;
    while i < words.len() {
        let w = words[i].as_bytes();
        if w == b"--" || w.len() < 2 || w[0] != b'-' {
            i += 1;
            continue;
        }
        let mut j = 1;
        while j < w.len() {
            let c = w[j];
            if takes_arg(c) {
                let val = if j + 1 < w.len() {
                    String::from_utf8_lossy(&w[j + 1..]).into_owned()
                } else {
                    i += 1;
                    words.get(i).map(|s| s.to_string()).unwrap_or_default()
                };
                if sel.as_bytes() == [c] {
                    result = Some(val);
                }
                break;
            } else if sel.as_bytes() == [c] {
                result = Some(String::new());
            }
            j += 1;
        }
        i += 1;
    }
    result
}

fn num_cmp(op: NOp, a: i128, b: i128) -> bool {
    match op {
        NOp::Eq => a == b,
        NOp::Ne => a != b,
        NOp::Lt => a < b,
        NOp::Le => a <= b,
        NOp::Gt => a > b,
        NOp::Ge => a >= b,
    }
}

fn icontains(hay: &str, needle_lower: &str) -> bool {
    let n = needle_lower.as_bytes();
    if n.is_empty() {
        return true;
    }
    let h = hay.as_bytes();
    if h.len() < n.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn val_ip(v: &Val<'_>) -> Option<IpAddr> {
    match v {
        Val::Ip(ip) => Some(*ip),
        Val::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Byte equality that stays inline for short strings (most rule constants), where
/// a call to `memcmp` costs more than the comparison.
#[inline(always)]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n >= 8 {
        // eight bytes at a time, the last word overlapping the one before
        let mut i = 0;
        while i + 8 < n {
            if word8(a, i) != word8(b, i) {
                return false;
            }
            i += 8;
        }
        word8(a, n - 8) == word8(b, n - 8)
    } else if n >= 4 {
        word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// The eight bytes of `s` at `i` as one word (0 past the end, which callers avoid).
#[inline(always)]
fn word8(s: &[u8], i: usize) -> u64 {
    s.get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_ne_bytes)
}

/// The four bytes of `s` at `i` as one word.
#[inline(always)]
fn word4(s: &[u8], i: usize) -> u32 {
    s.get(i..i + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_ne_bytes)
}

/// `hay` contains `needle`: a scan for the needle's first byte and a word compare
/// for short haystacks (event strings mostly are), the standard two-way search
/// for long ones (linear time whatever the input).
#[inline]
fn contains_str(hay_s: &str, needle_s: &str) -> bool {
    let (hay, needle) = (hay_s.as_bytes(), needle_s.as_bytes());
    let Some((&first, _)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    if hay.len() > 256 {
        return hay_s.contains(needle_s);
    }
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay
            .get(i..=last_start)
            .and_then(|h| h.iter().position(|&c| c == first))
        {
            None => return false,
            Some(p) => {
                i += p;
                if hay
                    .get(i..i + needle.len())
                    .is_some_and(|w| bytes_eq(w, needle))
                {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}

impl Matcher {
    /// [`Matcher::test`] for a text value, with the common string tests inline.
    #[inline]
    fn test_str<E: Event + ?Sized>(&self, s: &str, e: &E) -> bool {
        let b = s.as_bytes();
        match self {
            Matcher::Str { op, needle } => {
                let n = needle.as_bytes();
                match op {
                    SOp::Eq => bytes_eq(b, n),
                    SOp::Ne => !bytes_eq(b, n),
                    SOp::StartsWith => b.get(..n.len()).is_some_and(|p| bytes_eq(p, n)),
                    SOp::EndsWith => b
                        .len()
                        .checked_sub(n.len())
                        .and_then(|i| b.get(i..))
                        .is_some_and(|p| bytes_eq(p, n)),
                    _ => self.test(&Val::Str(Cow::Borrowed(s)), e),
                }
            }
            Matcher::InSet { set, negate } => set.contains(s) != *negate,
            Matcher::AnyOf(ms) => ms.iter().any(|m| m.test_str(s, e)),
            _ => self.test(&Val::Str(Cow::Borrowed(s)), e),
        }
    }

    fn test<E: Event + ?Sized>(&self, v: &Val<'_>, e: &E) -> bool {
        match self {
            Matcher::Exists => true,
            Matcher::EvtType { names, negate, .. } => names.contains(&v.to_text()) != *negate,
            Matcher::Str { op, needle } => {
                let t = v.to_text();
                let s: &str = &t;
                match op {
                    SOp::Eq => s == &**needle,
                    SOp::Ne => s != &**needle,
                    SOp::Contains => s.contains(&**needle),
                    SOp::IContains => icontains(s, needle),
                    SOp::StartsWith => s.starts_with(&**needle),
                    SOp::EndsWith => s.ends_with(&**needle),
                    SOp::Glob => {
                        // the pattern's literal start must match before any wildcard
                        // can: most paths fail here without running the matcher
                        let n = needle.as_bytes();
                        let lit = glob_literal_len(n);
                        n.get(..lit).is_some_and(|l| s.as_bytes().starts_with(l))
                            && glob_match(n, s.as_bytes(), false)
                    }
                    SOp::IGlob => glob_match(needle.as_bytes(), s.as_bytes(), true),
                }
            }
            Matcher::Regex(re) => re.is_match(&v.to_text()),
            Matcher::InSet { set, negate } => set.contains(&v.to_text()) != *negate,
            Matcher::PMatch(set) => pmatch(set, &v.to_text()),
            Matcher::Affix(a) => {
                let Affix {
                    set,
                    edge,
                    lens,
                    n,
                    modifier,
                    suffix,
                } = &**a;
                let t = v.to_text();
                let hay = t.as_bytes();
                let mut count = 0usize;
                for &l in lens {
                    if l > hay.len() {
                        break;
                    }
                    let part = if *suffix {
                        &hay[hay.len() - l..]
                    } else {
                        &hay[..l]
                    };
                    // an empty item has no edge byte: always look it up
                    let edge_ok = match if *suffix { part.first() } else { part.last() } {
                        Some(&c) => byte_bit(edge, c),
                        None => true,
                    };
                    if edge_ok && set.contains(part) {
                        count += 1;
                        if *modifier == Modifier::AnyOf {
                            return true;
                        }
                    }
                }
                modifier_ok(*modifier, count, *n)
            }
            Matcher::Multi { ac, n, modifier } => {
                let t = v.to_text();
                let hay = t.as_bytes();
                if *modifier == Modifier::AnyOf {
                    ac.is_match(hay)
                } else {
                    let mut seen = vec![false; *n];
                    let mut count = 0;
                    for m in ac.find_overlapping_iter(hay) {
                        let i = m.pattern().as_usize();
                        if !seen[i] {
                            seen[i] = true;
                            count += 1;
                        }
                    }
                    modifier_ok(*modifier, count, *n)
                }
            }
            Matcher::Each { items, modifier } => {
                let count = items.iter().filter(|m| m.test(v, e)).count();
                modifier_ok(*modifier, count, items.len())
            }
            Matcher::Num { op, rhs } => v.as_i128().is_some_and(|a| num_cmp(*op, a, *rhs)),
            Matcher::NumIn { set } => v.as_i128().is_some_and(|a| set.contains(&a)),
            Matcher::Bool { rhs, negate } => {
                let b = match v {
                    Val::Bool(b) => Some(*b),
                    Val::Str(s) => match s.as_ref() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    },
                    other => other.as_i128().map(|i| i != 0),
                };
                b.is_some_and(|b| (b == *rhs) != *negate)
            }
            Matcher::Ip { nets, negate } => {
                val_ip(v).is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)) != *negate)
            }
            Matcher::Bytes { needle, prefix } => {
                let owned;
                let hay: &[u8] = match v {
                    Val::Bytes(b) => b,
                    other => {
                        owned = other.to_text().into_owned();
                        owned.as_bytes()
                    }
                };
                if *prefix {
                    hay.starts_with(needle)
                } else {
                    needle.is_empty() || hay.windows(needle.len()).any(|w| w == &needle[..])
                }
            }
            Matcher::AnyOf(ms) => ms.iter().any(|m| m.test(v, e)),
            Matcher::Field { op, rhs } => {
                let others = rhs.values(e);
                others.iter().any(|o| field_cmp(*op, v, o))
            }
        }
    }
}

/// `pmatch`: `t` is one of the paths in `set` or under one of them.
fn pmatch(set: &StrSet, t: &str) -> bool {
    let p: &str = t.trim_end_matches('/');
    if p.is_empty() && t.starts_with('/') {
        return set.contains("/");
    }
    if set.max_len < 63 {
        // Only the members' lengths can be cut points: for each length L of a member,
        // `p` itself (L = |p|) or its prefix ending before a '/' at L is a candidate.
        // ('/' is ASCII, so L is then a char boundary.)
        let b = p.as_bytes();
        let mut lens = set.lens & !1; // no empty member
        while lens != 0 {
            let l = lens.trailing_zeros() as usize;
            lens &= lens - 1;
            let cut = match b.get(l) {
                None if l == b.len() => true,
                None => break, // longer than `p`: so are the remaining lengths
                Some(&c) => c == b'/',
            };
            if cut && p.get(..l).is_some_and(|d| set.contains(d)) {
                return true;
            }
        }
        return p.starts_with('/') && p.len() > 1 && set.contains("/");
    }
    if set.contains(p) {
        return true;
    }
    // the prefixes of `p` that end before one of its '/' (its parent
    // directories), scanned forwards only as far as the longest member
    // ('/' is ASCII, so every index of a '/' byte is a char boundary)
    let limit = p.len().min(set.max_len.saturating_add(1));
    let head = p.as_bytes().get(..limit).unwrap_or(p.as_bytes());
    for (i, &c) in head.iter().enumerate() {
        if c == b'/' && i > 0 && p.get(..i).is_some_and(|d| set.contains(d)) {
            return true;
        }
    }
    p.starts_with('/') && p.len() > 1 && set.contains("/")
}

fn modifier_ok(m: Modifier, count: usize, n: usize) -> bool {
    match m {
        Modifier::OneOf => count == 1,
        Modifier::AnyOf => count >= 1,
        Modifier::AllOf => count == n,
    }
}

fn field_cmp(op: Op, a: &Val<'_>, b: &Val<'_>) -> bool {
    if let (Some(x), Some(y)) = (num_of(a), num_of(b)) {
        if let Some(n) = num_op(op) {
            return num_cmp(n, x, y);
        }
    }
    let (x, y) = (a.to_text(), b.to_text());
    match op {
        Op::Eq | Op::In | Op::Intersects => x == y,
        Op::Ne => x != y,
        Op::Contains => x.contains(y.as_ref()),
        Op::IContains => icontains(&x, &y.to_ascii_lowercase()),
        Op::StartsWith => x.starts_with(y.as_ref()),
        Op::EndsWith => x.ends_with(y.as_ref()),
        Op::Glob => glob_match(y.as_bytes(), x.as_bytes(), false),
        Op::IGlob => glob_match(y.as_bytes(), x.as_bytes(), true),
        Op::PMatch => {
            x == y || (x.starts_with(y.as_ref()) && x.as_bytes().get(y.len()) == Some(&b'/'))
        }
        Op::BContains => x.contains(y.as_ref()),
        Op::BStartsWith => x.starts_with(y.as_ref()),
        Op::Lt => x < y,
        Op::Le => x <= y,
        Op::Gt => x > y,
        Op::Ge => x >= y,
        Op::Regex => regex::Regex::new(&format!("^(?:{y})$")).is_ok_and(|r| r.is_match(&x)),
        Op::Exists => true,
    }
}

fn num_of(v: &Val<'_>) -> Option<i128> {
    match v {
        Val::Int(i) => Some(i128::from(*i)),
        Val::Uint(u) => Some(i128::from(*u)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pmatch` as first written: the path, then each parent walking back from the
    /// end, then `/` (the forward scan bounded by the longest member must agree).
    fn pmatch_reference(set: &[&str], t: &str) -> bool {
        let has = |x: &str| set.contains(&x);
        let mut p = t.trim_end_matches('/');
        if p.is_empty() && t.starts_with('/') {
            return has("/");
        }
        loop {
            if has(p) {
                return true;
            }
            match p.rfind('/') {
                Some(0) => return p.len() > 1 && has("/"),
                Some(i) => p = &p[..i],
                None => return false,
            }
        }
    }

    /// The literal-prefix shortcut of `glob` never changes the matcher's answer.
    #[test]
    fn glob_prefix_filter_agrees_with_matcher() {
        let pats = [
            "/home/*/.ssh/*",
            "/proc*",
            "*.sh",
            "/etc/[a-c]x",
            "/a\\*b",
            "/tmp/?x",
            "/exact",
            "",
            "*",
        ];
        let paths = [
            "",
            "/",
            "/home/u/.ssh/id",
            "/home/",
            "/homer/u/.ssh/x",
            "/proc/1",
            "/pro",
            "a.sh",
            "/etc/bx",
            "/etc/dx",
            "/a*b",
            "/a\\xb",
            "/tmp/ax",
            "/tmp/x",
            "/exact",
            "/exactly",
        ];
        let ev = crate::ReplayEvent::default();
        for pat in pats {
            let m = Matcher::Str {
                op: SOp::Glob,
                needle: pat.into(),
            };
            for p in paths {
                let want = glob_match(pat.as_bytes(), p.as_bytes(), false);
                assert_eq!(
                    m.test(&Val::Str(Cow::Borrowed(p)), &ev),
                    want,
                    "{p:?} ~ {pat:?}"
                );
                assert_eq!(m.test_str(p, &ev), want, "{p:?} ~ {pat:?}");
            }
        }
    }

    /// The word-at-a-time equality agrees with `==` at every length and every
    /// position of a difference.
    #[test]
    fn bytes_eq_agrees_with_slice_eq() {
        let base: Vec<u8> = (0u8..40).map(|i| b'a' + i % 26).collect();
        for n in 0..base.len() {
            let a = &base[..n];
            assert!(bytes_eq(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert_eq!(bytes_eq(a, &b), a == &b[..], "len {n}, diff at {i}");
            }
            if n > 0 {
                assert!(!bytes_eq(a, &base[..n - 1]));
            }
        }
    }

    /// The first-byte scan agrees with `str::contains`, on short and long (> 256
    /// bytes, the two-way search) haystacks, with repeats and non-ASCII text.
    #[test]
    fn contains_str_agrees_with_std() {
        let long = "ab".repeat(200) + "../x" + &"é".repeat(50);
        let hays = [
            "",
            ".",
            "..",
            "../",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/a/../b",
            "....../",
            "O_RDONLY|O_CLOEXEC",
            "O_WRONLY|O_CREAT|O_TRUNC",
            "/é/../ü",
            "aaaaaaaaaaaaaaaaaaaab",
            long.as_str(),
        ];
        let needles = [
            "", ".", "../", "O_CREAT", "O_TRUNC", "aab", "é/", "x", "abab../x", "ü",
        ];
        for h in hays {
            for n in needles {
                assert_eq!(contains_str(h, n), h.contains(n), "{h:?} contains {n:?}");
            }
        }
    }

    /// Every fused string test gives the matcher's answer.
    #[test]
    fn str_tests_agree_with_matchers() {
        let ev = crate::ReplayEvent::default();
        let items: Vec<String> = ["bash", "sh", "/etc", "/etc/ssh", "python3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let matchers = vec![
            Matcher::Str {
                op: SOp::Eq,
                needle: "bash".into(),
            },
            Matcher::Str {
                op: SOp::Ne,
                needle: "bash".into(),
            },
            Matcher::Str {
                op: SOp::StartsWith,
                needle: "/etc/".into(),
            },
            Matcher::Str {
                op: SOp::EndsWith,
                needle: "sh".into(),
            },
            Matcher::Str {
                op: SOp::Contains,
                needle: "../".into(),
            },
            Matcher::Str {
                op: SOp::Glob,
                needle: "/home/*/.ssh/*".into(),
            },
            Matcher::InSet {
                set: Box::new(StrSet::new(&items)),
                negate: false,
            },
            Matcher::InSet {
                set: Box::new(StrSet::new(&items)),
                negate: true,
            },
            Matcher::PMatch(Box::new(StrSet::new(&items))),
            Matcher::AnyOf(vec![
                Matcher::Str {
                    op: SOp::Eq,
                    needle: "zsh".into(),
                },
                Matcher::InSet {
                    set: Box::new(StrSet::new(&items)),
                    negate: false,
                },
            ]),
            Matcher::AnyOf(vec![
                Matcher::Str {
                    op: SOp::Glob,
                    needle: "/home/*/.ssh".into(),
                },
                Matcher::PMatch(Box::new(StrSet::new(&items))),
            ]),
        ];
        let values = [
            "",
            "bash",
            "sh",
            "zsh",
            "/etc",
            "/etc/",
            "/etc/ssh/sshd_config",
            "/etc/sshx",
            "/home/u/.ssh",
            "/home/u/.ssh/id",
            "/a/../b",
            "python3",
            "é/bash",
            "/",
        ];
        for m in &matchers {
            let t = StrTest::of(m).expect("a fused test");
            for v in values {
                assert_eq!(t.test(v), m.test_str(v, &ev), "{m:?} on {v:?}");
            }
        }
    }

    /// `startswith/endswith <modifier> (...)` through the length table and its
    /// edge-byte filter count the same items as testing each item in turn.
    #[test]
    fn affix_lists_agree_with_each_item() {
        let lhs = Operand::Field(fields::resolve("fd.name", None, true).expect("field"));
        let item_sets: &[&[&str]] = &[
            &[".enc", ".locked", ".crypt", ".cry"],
            &["/etc/", "/etc/ssh/", "/root"],
            &["", "x", "é"],
            &["ab", "b", "aab"],
        ];
        let values = [
            "",
            "x",
            "a.enc",
            "a.ENC",
            "f.cry",
            "f.crypt",
            "/etc/ssh/moduli",
            "/etcx",
            "/root",
            "/rootkit",
            "aab",
            "ab",
            "b",
            "é",
            "xé",
            "/é/x",
        ];
        for items in item_sets {
            let owned: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            for (op, suffix) in [(Op::StartsWith, false), (Op::EndsWith, true)] {
                for modifier in [Modifier::AnyOf, Modifier::OneOf, Modifier::AllOf] {
                    let m = list_matcher(op, Some(modifier), &owned, FieldType::Str, &lhs, 0)
                        .expect("matcher");
                    for v in values {
                        let count = items
                            .iter()
                            .filter(|i| {
                                if suffix {
                                    v.ends_with(**i)
                                } else {
                                    v.starts_with(**i)
                                }
                            })
                            .count();
                        let want = modifier_ok(modifier, count, items.len());
                        let got =
                            m.test(&Val::Str(Cow::Borrowed(v)), &crate::ReplayEvent::default());
                        assert_eq!(got, want, "{v:?} {op:?} {modifier:?} {items:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn pmatch_agrees_with_reference() {
        let deep = "/home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2";
        let sets: &[&[&str]] = &[
            // a member of 63 bytes or more: the scan over '/' instead of the lengths
            &["/tmp", deep],
            &["/tmp"],
            &["/", "/etc"],
            &["/root/.ssh", "/etc/ssh", "/home/user/a/b/c/d/e/f/g"],
            &["tmp", "a/b"],
            &["/a/"],
            &[],
        ];
        let paths = [
            "",
            "/",
            "//",
            "///x",
            "/tmp",
            "/tmp/",
            "/tmp/x",
            "/tmpx",
            "/tm",
            "/etc/passwd",
            "/etc",
            "etc",
            "tmp/x",
            "a/b/c",
            "a//b",
            "/a//b",
            "/a/",
            "/a/b",
            "/root/.ssh/id_rsa",
            "/root/.sshx",
            "/etc/ssh/sshd_config",
            "/home/user/a/b/c/d/e/f/g/h/i",
            "/home/user/a/b/c/d/e/f",
            "/home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2",
            "/home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3",
            "/home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/23",
            "/usr/lib/python3/x.py",
            "/é/ü/tmp",
            "\u{1F600}/tmp",
        ];
        for set in sets {
            // as the compiler stores them: trailing '/' removed, "/" kept
            let owned: Vec<String> = set
                .iter()
                .map(|s| match s.trim_end_matches('/') {
                    "" => "/".to_owned(),
                    t => t.to_owned(),
                })
                .collect();
            let trimmed: Vec<&str> = owned.iter().map(String::as_str).collect();
            let m = Matcher::PMatch(Box::new(StrSet::new(&owned)));
            for p in paths {
                let got = m.test(&Val::Str(Cow::Borrowed(p)), &crate::ReplayEvent::default());
                assert_eq!(got, pmatch_reference(&trimmed, p), "{p:?} in {set:?}");
            }
        }
    }
}
