//! Condition syntax tree (before field resolution).

/// Binary / unary comparison operators of the condition language.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }

    /// Word operators that accept a `oneof/anyof/allof` modifier and a list.
    pub(crate) fn is_str_op(self) -> bool {
        matches!(
            self,
            Op::Eq
                | Op::Ne
                | Op::Contains
                | Op::IContains
                | Op::BContains
                | Op::StartsWith
                | Op::BStartsWith
                | Op::EndsWith
                | Op::Glob
                | Op::IGlob
                | Op::Regex
        )
    }

    pub(crate) fn is_list_op(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// `oneof` / `anyof` / `allof` (Falco 0.44).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum Modifier {
    OneOf,
    AnyOf,
    AllOf,
}

/// Field transformers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum Transformer {
    ToLower,
    ToUpper,
    B64,
    Basename,
    Len,
    Join,
    Concat,
    Getopt,
}

impl Transformer {
    pub(crate) fn from_name(s: &str) -> Option<Transformer> {
        Some(match s {
            "tolower" => Transformer::ToLower,
            "toupper" => Transformer::ToUpper,
            "b64" => Transformer::B64,
            "basename" => Transformer::Basename,
            "len" => Transformer::Len,
            "join" => Transformer::Join,
            "concat" => Transformer::Concat,
            "getopt" => Transformer::Getopt,
            _ => return None,
        })
    }
}

/// A field reference, possibly wrapped in transformers.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum FieldExpr {
    Field {
        name: String,
        arg: Option<String>,
        pos: usize,
    },
    Transform {
        kind: Transformer,
        args: Vec<TArg>,
        arg: Option<String>,
        pos: usize,
    },
}

impl FieldExpr {
    pub(crate) fn pos(&self) -> usize {
        match self {
            FieldExpr::Field { pos, .. } | FieldExpr::Transform { pos, .. } => *pos,
        }
    }
}

/// A transformer argument.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum TArg {
    Field(FieldExpr),
    Str(String),
    List(Vec<TArg>),
}

/// Right-hand side of a check.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Rhs {
    None,
    Value(String),
    List(Vec<String>),
    Field(FieldExpr),
}

/// A parsed condition.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Macro {
        name: String,
        pos: usize,
    },
    Check {
        lhs: FieldExpr,
        op: Op,
        modifier: Option<Modifier>,
        rhs: Rhs,
        pos: usize,
    },
}

impl Expr {
    /// Build an `and`, flattening nested ands so the tree stays shallow.
    pub(crate) fn and(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for e in items {
            match e {
                Expr::And(v) => out.extend(v),
                e => out.push(e),
            }
        }
        if out.len() == 1 {
            out.pop().unwrap_or(Expr::And(Vec::new()))
        } else {
            Expr::And(out)
        }
    }

    /// Build an `or`, flattening nested ors.
    pub(crate) fn or(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for e in items {
            match e {
                Expr::Or(v) => out.extend(v),
                e => out.push(e),
            }
        }
        if out.len() == 1 {
            out.pop().unwrap_or(Expr::Or(Vec::new()))
        } else {
            Expr::Or(out)
        }
    }
}
