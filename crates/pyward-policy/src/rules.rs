//! The gates, triggers and parameters pyward knows (Anchore's names and pyward's own), and the
//! compiled form of a rule: every parameter checked and converted once, at load time.

use crate::pyre::{MatchMode, PyRegex};
use pyward_core::Action;
use std::collections::BTreeMap;

/// What a parameter must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// One of these values (compared case-sensitively, as Anchore's JSON schema does).
    Enum(&'static [&'static str]),
    /// `true`/`false`.
    Bool,
    /// A non-negative integer.
    Int,
    /// A number (integer or decimal).
    Num,
    /// A regular expression.
    Regex,
    /// A comma-separated list (a YAML list is accepted too).
    List,
    /// An octal file mode such as `00644`.
    Octal,
}

pub struct ParamSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

pub struct TriggerSpec {
    pub gate: &'static str,
    pub trigger: &'static str,
    pub params: &'static [ParamSpec],
    pub description: &'static str,
}

const fn p(name: &'static str, kind: Kind, required: bool) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required,
    }
}

const DIRECTIVES: &[&str] = &[
    "ADD",
    "ARG",
    "COPY",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "USER",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "VOLUME",
    "WORKDIR",
];
const DF_CHECKS: &[&str] = &[
    "=",
    "!=",
    "exists",
    "not_exists",
    "like",
    "not_like",
    "in",
    "not_in",
];
const META_CHECKS: &[&str] = &[
    "=",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "exists",
    "not_exists",
    "like",
    "not_like",
    "in",
    "not_in",
];
const LIST_TYPES: &[&str] = &["whitelist", "blacklist", "allowlist", "denylist"];
const META_ATTRS: &[&str] = &[
    "size",
    "architecture",
    "os_type",
    "distro",
    "distro_version",
    "like_distro",
    "layer_count",
    "user",
    "package_count",
    "file_count",
];
const CONFIDENCE: &[&str] = &["low", "medium", "high"];

/// Every trigger pyward evaluates.
pub const TRIGGERS: &[TriggerSpec] = &[
    TriggerSpec {
        gate: "packages",
        trigger: "blacklist",
        params: &[p("name", Kind::Str, true), p("version", Kind::Str, false)],
        description: "a package with this name (PEP 503-normalised, case-insensitive) and optional version is present",
    },
    TriggerSpec {
        gate: "packages",
        trigger: "denylist",
        params: &[p("name", Kind::Str, true), p("version", Kind::Str, false)],
        description: "Anchore Enterprise name of `blacklist`",
    },
    TriggerSpec {
        gate: "packages",
        trigger: "required_package",
        params: &[
            p("name", Kind::Str, true),
            p("version", Kind::Str, false),
            p("version_match_type", Kind::Enum(&["exact", "minimum"]), false),
        ],
        description: "the package (at the version, or at least the version) is not installed",
    },
    TriggerSpec {
        gate: "packages",
        trigger: "verify",
        params: &[
            p("only_packages", Kind::List, false),
            p("only_directories", Kind::List, false),
            p("check", Kind::Enum(&["changed", "missing"]), false),
        ],
        description: "an installed file no longer matches its package's RECORD (hash or size), or is missing",
    },
    TriggerSpec {
        gate: "dockerfile",
        trigger: "instruction",
        params: &[
            p("instruction", Kind::Enum(DIRECTIVES), true),
            p("check", Kind::Enum(DF_CHECKS), true),
            p("value", Kind::Str, false),
            p("actual_dockerfile_only", Kind::Bool, false),
        ],
        description: "a Dockerfile instruction matches the check",
    },
    TriggerSpec {
        gate: "dockerfile",
        trigger: "effective_user",
        params: &[p("users", Kind::List, true), p("type", Kind::Enum(LIST_TYPES), true)],
        description: "the last USER (root when there is none) is denied, or not allowed",
    },
    TriggerSpec {
        gate: "dockerfile",
        trigger: "exposed_ports",
        params: &[
            p("ports", Kind::List, true),
            p("type", Kind::Enum(LIST_TYPES), true),
            p("actual_dockerfile_only", Kind::Bool, false),
        ],
        description: "an EXPOSEd port is denied, or not allowed",
    },
    TriggerSpec {
        gate: "dockerfile",
        trigger: "no_dockerfile_provided",
        params: &[],
        description: "no actual Dockerfile was given (--dockerfile) or found",
    },
    TriggerSpec {
        gate: "files",
        trigger: "name_match",
        params: &[p("regex", Kind::Regex, true)],
        description: "a file's absolute path matches the regex (anywhere, unless file_regex: match)",
    },
    TriggerSpec {
        gate: "files",
        trigger: "content_regex_match",
        params: &[p("regex_name", Kind::Str, false)],
        description: "a file's content matches a content_search regex (by name), or this regex",
    },
    TriggerSpec {
        gate: "files",
        trigger: "attribute_match",
        params: &[
            p("filename", Kind::Str, true),
            p("checksum_algorithm", Kind::Enum(&["sha256"]), false),
            p("checksum", Kind::Str, false),
            p("checksum_match", Kind::Enum(&["equals", "not_equals"]), false),
            p("mode", Kind::Octal, false),
            p("mode_op", Kind::Enum(&["equals", "not_equals"]), false),
            p("size", Kind::Int, false),
            p("size_op", Kind::Enum(&["equals", "not_equals", ">", "<", ">=", "<="]), false),
            p("skip_missing", Kind::Bool, false),
        ],
        description: "a file's sha256, mode or size matches",
    },
    TriggerSpec {
        gate: "files",
        trigger: "suid_or_guid_set",
        params: &[],
        description: "a file has the setuid or setgid bit",
    },
    TriggerSpec {
        gate: "secret_scans",
        trigger: "content_regex_checks",
        params: &[
            p("content_regex_name", Kind::Str, false),
            p("filename_regex", Kind::Regex, false),
            p("match_type", Kind::Enum(&["found", "notfound"]), false),
        ],
        description: "a secret regex (private keys, cloud keys, tokens) matches a file's content",
    },
    TriggerSpec {
        gate: "metadata",
        trigger: "attribute",
        params: &[
            p("attribute", Kind::Enum(META_ATTRS), true),
            p("check", Kind::Enum(META_CHECKS), true),
            p("value", Kind::Str, false),
        ],
        description: "an image attribute (size, layer_count, distro, architecture, user...) matches",
    },
    TriggerSpec {
        gate: "always",
        trigger: "always",
        params: &[],
        description: "always fires (for testing a pipeline)",
    },
    TriggerSpec {
        gate: "malicious",
        trigger: "known_malicious",
        params: &[p("include_dependencies", Kind::Bool, false), p("include_files", Kind::Bool, false)],
        description: "pyward intel: a known-malicious package, a dependency on one, or a file IOC",
    },
    TriggerSpec {
        gate: "typosquat",
        trigger: "name",
        params: &[
            p("min_confidence", Kind::Enum(CONFIDENCE), false),
            p("max_confidence", Kind::Enum(CONFIDENCE), false),
        ],
        description: "pyward names: a package name imitates a popular one, at least min_confidence \
                      and below max_confidence",
    },
    TriggerSpec {
        gate: "heuristics",
        trigger: "score",
        params: &[
            p("min_score", Kind::Num, false),
            p("max_score", Kind::Num, false),
            p("rule_ids", Kind::List, false),
        ],
        description: "pyward heuristics: a static-analysis finding whose package score is at or \
                      above min_score and below max_score",
    },
    TriggerSpec {
        gate: "drift",
        trigger: "packages_added",
        params: &[],
        description: "a package is present that the --baseline does not have",
    },
    TriggerSpec {
        gate: "drift",
        trigger: "packages_removed",
        params: &[],
        description: "a package of the --baseline is gone",
    },
    TriggerSpec {
        gate: "drift",
        trigger: "packages_modified",
        params: &[],
        description: "a package's version differs from the --baseline",
    },
];

/// Anchore gate names of engine versions before 0.2 (`gates/eol`) that map to current gates.
pub fn canonical_gate(gate: &str) -> String {
    let g = gate.trim().to_ascii_lowercase();
    match g.as_str() {
        "pkgcheck" => "packages".into(),
        "dockerfilecheck" => "dockerfile".into(),
        "filecheck" => "files".into(),
        "metadatacheck" => "metadata".into(),
        "secretcheck" => "secret_scans".into(),
        "tag_drift" => "drift".into(),
        _ => g,
    }
}

/// Anchore gates pyward knows by name but does not evaluate (no data for them in a static scan).
pub const UNSUPPORTED_GATES: &[&str] = &[
    "vulnerabilities",
    "licenses",
    "passwd_file",
    "retrieved_files",
    "malware",
    "npms",
    "ruby_gems",
    "gems",
    "distro",
    "ancestry",
    "stig",
    "image_source_drift",
    "anchoresec",
];

pub fn spec(gate: &str, trigger: &str) -> Option<&'static TriggerSpec> {
    TRIGGERS
        .iter()
        .find(|t| t.gate == gate && t.trigger == trigger)
}

/// Comparison operators of `metadata` `attribute` and `attribute_match` `size_op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Exists,
    NotExists,
    Like,
    NotLike,
    In,
    NotIn,
}

impl Cmp {
    pub fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "=" | "equals" => Cmp::Eq,
            "!=" | "not_equals" => Cmp::Ne,
            ">" => Cmp::Gt,
            "<" => Cmp::Lt,
            ">=" => Cmp::Ge,
            "<=" => Cmp::Le,
            "exists" => Cmp::Exists,
            "not_exists" => Cmp::NotExists,
            "like" => Cmp::Like,
            "not_like" => Cmp::NotLike,
            "in" => Cmp::In,
            "not_in" => Cmp::NotIn,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn parse(s: &str) -> Option<Confidence> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Confidence::Low),
            "medium" => Some(Confidence::Medium),
            "high" => Some(Confidence::High),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    Added,
    Removed,
    Modified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyState {
    Changed,
    Missing,
}

/// A rule's trigger with its parameters checked and converted.
#[derive(Debug, Clone)]
pub enum Check {
    PackageDeny {
        name: String,
        version: Option<String>,
    },
    PackageRequired {
        name: String,
        version: Option<String>,
        minimum: bool,
    },
    PackageVerify {
        only_packages: Vec<String>,
        only_directories: Vec<String>,
        check: Option<VerifyState>,
    },
    Instruction {
        directive: String,
        op: Cmp,
        value: Option<String>,
        regex: Option<PyRegex>,
        actual_only: bool,
    },
    EffectiveUser {
        users: Vec<String>,
        allow: bool,
    },
    ExposedPorts {
        ports: Vec<String>,
        allow: bool,
        actual_only: bool,
    },
    NoDockerfile,
    FileName {
        regex: PyRegex,
    },
    FileContent {
        name: Option<String>,
    },
    FileAttribute {
        filename: String,
        checksum: Option<(String, bool)>,
        mode: Option<(u32, bool)>,
        size: Option<(u64, Cmp)>,
        skip_missing: bool,
    },
    Suid,
    Secret {
        name: Option<String>,
        filename: Option<PyRegex>,
        found: bool,
    },
    Metadata {
        attribute: String,
        op: Cmp,
        value: Option<String>,
        regex: Option<PyRegex>,
    },
    Always,
    Malicious {
        dependencies: bool,
        files: bool,
    },
    Typosquat {
        min: Confidence,
        /// Exclusive upper bound, so confidence bands of several rules do not overlap.
        below: Option<Confidence>,
    },
    Heuristics {
        min_score: Option<f64>,
        /// Exclusive upper bound, so score bands of several rules do not overlap.
        max_score: Option<f64>,
        rule_ids: Vec<String>,
    },
    Drift(DriftKind),
}

/// One rule of a rule set.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Canonical gate name (`packages`, `files`...).
    pub gate: String,
    /// Trigger name as written, lower-cased (`blacklist` or `denylist`), used in trigger ids.
    pub trigger: String,
    pub action: Action,
    /// Parameters as given (names lower-cased), for reports.
    pub params: BTreeMap<String, String>,
    pub check: Check,
    pub pos: crate::node::Pos,
}

/// Convert checked parameters of `spec` into a [`Check`]. `file_mode` is the bundle's file
/// regex semantics. Errors are about one parameter: `(param name, message)`.
pub fn compile(
    spec: &TriggerSpec,
    params: &BTreeMap<String, String>,
    file_mode: MatchMode,
) -> Result<Check, (String, String)> {
    let get = |n: &str| params.get(n).map(|s| s.as_str()).filter(|s| !s.is_empty());
    let list = |n: &str| -> Vec<String> {
        get(n)
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let boolean = |n: &str, default: bool| {
        get(n)
            .map(|s| s.eq_ignore_ascii_case("true"))
            .unwrap_or(default)
    };
    let regex = |n: &str, mode: MatchMode| -> Result<Option<PyRegex>, (String, String)> {
        get(n)
            .map(|s| PyRegex::new(s, mode).map_err(|e| (n.to_string(), e)))
            .transpose()
    };
    let req = |n: &str| {
        get(n)
            .map(str::to_string)
            .ok_or_else(|| (n.to_string(), "is required".to_string()))
    };
    let allow_type = |n: &str| -> bool { matches!(get(n), Some("whitelist" | "allowlist")) };
    Ok(match (spec.gate, spec.trigger) {
        ("packages", "blacklist" | "denylist") => Check::PackageDeny {
            name: req("name")?,
            version: get("version").map(str::to_string),
        },
        ("packages", "required_package") => Check::PackageRequired {
            name: req("name")?,
            version: get("version").map(str::to_string),
            minimum: get("version_match_type") == Some("minimum"),
        },
        ("packages", "verify") => Check::PackageVerify {
            only_packages: list("only_packages")
                .iter()
                .map(|n| pyward_core::normalize_name(n))
                .collect(),
            only_directories: list("only_directories"),
            check: match get("check") {
                Some("changed") => Some(VerifyState::Changed),
                Some("missing") => Some(VerifyState::Missing),
                _ => None,
            },
        },
        ("dockerfile", "instruction") => {
            let op = get("check")
                .and_then(Cmp::parse)
                .ok_or_else(|| ("check".to_string(), "is required".to_string()))?;
            let needs_value = !matches!(op, Cmp::Exists | Cmp::NotExists);
            if needs_value && get("value").is_none() {
                return Err((
                    "value".into(),
                    format!(
                        "is required when check is `{}`",
                        get("check").unwrap_or_default()
                    ),
                ));
            }
            let regex = if matches!(op, Cmp::Like | Cmp::NotLike) {
                regex("value", MatchMode::Start)?
            } else {
                None
            };
            Check::Instruction {
                directive: req("instruction")?,
                op,
                value: get("value").map(str::to_string),
                regex,
                actual_only: boolean("actual_dockerfile_only", false),
            }
        }
        ("dockerfile", "effective_user") => Check::EffectiveUser {
            users: list("users"),
            allow: allow_type("type"),
        },
        ("dockerfile", "exposed_ports") => {
            let ports = list("ports");
            for port in &ports {
                if port.parse::<u32>().is_err() {
                    return Err(("ports".into(), format!("`{port}` is not a port number")));
                }
            }
            Check::ExposedPorts {
                ports,
                allow: allow_type("type"),
                actual_only: boolean("actual_dockerfile_only", false),
            }
        }
        ("dockerfile", "no_dockerfile_provided") => Check::NoDockerfile,
        ("files", "name_match") => Check::FileName {
            regex: regex("regex", file_mode)?
                .ok_or_else(|| ("regex".to_string(), "is required".to_string()))?,
        },
        ("files", "content_regex_match") => Check::FileContent {
            name: get("regex_name").map(str::to_string),
        },
        ("files", "attribute_match") => {
            let checksum = get("checksum").map(|c| {
                (
                    c.to_ascii_lowercase(),
                    get("checksum_match") != Some("not_equals"),
                )
            });
            let mode = match get("mode") {
                Some(m) => Some((
                    u32::from_str_radix(m, 8).map_err(|_| {
                        (
                            "mode".to_string(),
                            format!("`{m}` is not an octal mode such as 00644"),
                        )
                    })?,
                    get("mode_op") != Some("not_equals"),
                )),
                None => None,
            };
            let size = match get("size") {
                Some(s) => Some((
                    s.parse::<u64>().map_err(|_| {
                        ("size".to_string(), format!("`{s}` is not a size in bytes"))
                    })?,
                    get("size_op").and_then(Cmp::parse).unwrap_or(Cmp::Eq),
                )),
                None => None,
            };
            if checksum.is_none()
                && mode.is_none()
                && size.is_none()
                && boolean("skip_missing", true)
            {
                return Err((
                    "checksum".into(),
                    "give at least one of checksum, mode or size (or skip_missing: false)".into(),
                ));
            }
            Check::FileAttribute {
                filename: req("filename")?,
                checksum,
                mode,
                size,
                skip_missing: boolean("skip_missing", true),
            }
        }
        ("files", "suid_or_guid_set") => Check::Suid,
        ("secret_scans", "content_regex_checks") => Check::Secret {
            name: get("content_regex_name").map(str::to_string),
            filename: regex("filename_regex", file_mode)?,
            found: get("match_type") != Some("notfound"),
        },
        ("metadata", "attribute") => {
            let op = get("check")
                .and_then(Cmp::parse)
                .ok_or_else(|| ("check".to_string(), "is required".to_string()))?;
            let needs_value = !matches!(op, Cmp::Exists | Cmp::NotExists);
            if needs_value && get("value").is_none() {
                return Err(("value".into(), "is required for this check".into()));
            }
            let regex = if matches!(op, Cmp::Like | Cmp::NotLike) {
                regex("value", MatchMode::Start)?
            } else {
                None
            };
            let attribute = req("attribute")?;
            if matches!(op, Cmp::Gt | Cmp::Lt | Cmp::Ge | Cmp::Le) {
                if let Some(v) = get("value") {
                    if parse_size(v).is_none() {
                        return Err((
                            "value".into(),
                            format!("`{v}` is not a number (sizes may use units: 100MB, 1GiB)"),
                        ));
                    }
                }
            }
            Check::Metadata {
                attribute,
                op,
                value: get("value").map(str::to_string),
                regex,
            }
        }
        ("always", "always") => Check::Always,
        ("malicious", "known_malicious") => Check::Malicious {
            dependencies: boolean("include_dependencies", true),
            files: boolean("include_files", true),
        },
        ("typosquat", "name") => Check::Typosquat {
            min: get("min_confidence")
                .and_then(Confidence::parse)
                .unwrap_or(Confidence::Medium),
            below: get("max_confidence").and_then(Confidence::parse),
        },
        ("heuristics", "score") => {
            let num = |name: &str| -> Result<Option<f64>, (String, String)> {
                match get(name) {
                    Some(s) => s
                        .parse::<f64>()
                        .map(Some)
                        .map_err(|_| (name.to_string(), format!("`{s}` is not a number"))),
                    None => Ok(None),
                }
            };
            Check::Heuristics {
                min_score: num("min_score")?,
                max_score: num("max_score")?,
                rule_ids: list("rule_ids"),
            }
        }
        ("drift", "packages_added") => Check::Drift(DriftKind::Added),
        ("drift", "packages_removed") => Check::Drift(DriftKind::Removed),
        ("drift", "packages_modified") => Check::Drift(DriftKind::Modified),
        (g, t) => return Err(("trigger".into(), format!("{g}/{t} has no evaluator"))),
    })
}

/// A number, optionally with a byte unit (`100MB`, `1.5GiB`, `512k`), as Anchore's
/// `convert_bytes_size` reads image sizes.
pub fn parse_size(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * mult)
}
