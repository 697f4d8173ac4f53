use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A policy decision. Ordered as Anchore orders it: `Stop < Warn < Go`, so the final action of a
/// set of matches is their minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    Stop,
    Warn,
    Go,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Stop => "STOP",
            Action::Warn => "WARN",
            Action::Go => "GO",
        }
    }

    /// The final action of a set of actions: the lowest one, `Go` when there is none.
    pub fn combine<I: IntoIterator<Item = Action>>(actions: I) -> Action {
        actions.into_iter().min().unwrap_or(Action::Go)
    }

    /// Whether a run with this final action passes (exit code 0): GO and WARN pass, STOP fails.
    pub fn passes(self) -> bool {
        self != Action::Stop
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stop" => Ok(Action::Stop),
            "warn" => Ok(Action::Warn),
            "go" => Ok(Action::Go),
            other => Err(format!(
                "unknown action `{other}`: expected STOP, WARN or GO"
            )),
        }
    }
}

/// How bad a finding is, independent of what a policy decides to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" | "note" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}`: expected info, low, medium, high or critical"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wins() {
        assert_eq!(
            Action::combine([Action::Go, Action::Stop, Action::Warn]),
            Action::Stop
        );
        assert_eq!(Action::combine([Action::Go, Action::Warn]), Action::Warn);
        assert_eq!(Action::combine([]), Action::Go);
        assert!(Action::Warn.passes());
        assert!(!Action::Stop.passes());
    }

    #[test]
    fn parse_case_insensitive() {
        assert_eq!("stop".parse::<Action>().unwrap(), Action::Stop);
        assert_eq!(" Warn ".parse::<Action>().unwrap(), Action::Warn);
        assert!("halt".parse::<Action>().is_err());
    }
}
