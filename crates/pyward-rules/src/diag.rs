//! Load-time diagnostics (errors and warnings) with positions.

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The ruleset cannot be used (Falco refuses to start).
    Error,
    /// Loaded, but something is off (deprecated key, unknown key, slow rule...).
    Warning,
}

/// One error or warning found while loading or compiling rules files.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// File name as given to the loader (or the name passed to `load_str`).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// Name of the rule, macro or list concerned, if any.
    pub item: Option<String>,
    /// Kind of that item (`rule`, `macro`, `list`...).
    pub item_kind: Option<String>,
    /// Falco-style code where Falco has one (`LOAD_UNKNOWN_FILTER`, `LOAD_UNKNOWN_KEY`...).
    pub code: Option<String>,
    /// What is wrong, in Falco's words where they exist.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {sev}", self.file, self.line, self.column)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(item) = &self.item {
            write!(
                f,
                ": {} '{}'",
                self.item_kind.as_deref().unwrap_or("item"),
                item
            )?;
        }
        write!(f, ": {}", self.message)
    }
}
