//! # pyward-rules: Falco's rules language, unchanged, for pyward's runtime half
//!
//! Loads Falco rules files (lists, macros, rules, `exceptions`, `append`,
//! `override`, `enabled` toggles, `required_engine_version`,
//! `required_plugin_versions`), parses the condition language (the whole libsinsp
//! grammar: operators, `oneof/anyof/allof`, `val()`, transformers, field
//! arguments), compiles each rule into a typed matcher tree indexed by event type,
//! evaluates events through the [`Event`] trait and formats alerts in Falco's text
//! and JSON shapes.
//!
//! ```no_run
//! use pyward_rules::{Engine, EngineOptions, LoadOptions, RulesetBuilder};
//! use pyward_rules::event::replay::ReplayEvent;
//!
//! let mut b = RulesetBuilder::new(LoadOptions::default());
//! b.load_file("rules/falco_rules.yaml");
//! b.load_file("rules/pyward_rules.yaml");
//! let ruleset = b.build();
//! for d in ruleset.diagnostics() { eprintln!("{d}"); }
//! let engine = Engine::new(&ruleset, EngineOptions::default()).expect("no load errors");
//! let ev = ReplayEvent::parse_line(r#"{"time":0,"type":"execve","proc":{"name":"bash"}}"#).unwrap();
//! for m in engine.evaluate(&ev) {
//!     let alert = m.to_alert(&ev, "my-host");
//!     println!("{}", serde_json::to_string(&alert).unwrap());
//! }
//! ```
//!
//! Flow: [`RulesetBuilder`] (YAML → items, diagnostics with file:line:column) →
//! [`Ruleset`] (resolved lists/macros, parsed and type-checked rules, event-type
//! sets) → [`Engine`] (compiled matchers, per-event-type rule index) →
//! [`Match`] → [`Alert`].
//!
//! Limits that keep hostile input bounded: [`LoadOptions::max_file_bytes`], YAML
//! node and alias-expansion budgets, [`LoadOptions::max_condition_bytes`], parser
//! nesting depth 1000 (Falco's value for rules) and a node budget for macro expansion.

pub mod diag;
pub mod event;
pub mod priority;

mod ast;
mod compile;
mod engine;
mod fields;
mod loader;
mod output;
mod parser;
pub mod yaml;

pub use diag::{Diagnostic, Severity};
pub use engine::{Engine, EngineError, EngineOptions, Match, RuleMatching};
pub use event::replay::{ReplayError, ReplayEvent};
pub use event::stream::{ReplayReader, ReplayWriter};
pub use event::{Event, EventType, Value};
pub use loader::{
    ListInfo, LoadOptions, MacroInfo, RuleInfo, Ruleset, RulesetBuilder, ENGINE_VERSION,
};
pub use output::{Alert, OutputValue};
pub use priority::Priority;
