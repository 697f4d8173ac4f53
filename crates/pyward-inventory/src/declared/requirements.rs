//! The pip requirements file format (`requirements*.txt`, `constraints*.txt`): logical lines
//! (`\` continuations), comments, options (`-r`/`-c` includes, `-e` editables, index options,
//! per-requirement `--hash`), requirements. Includes are followed by the caller, which owns the
//! file tree.

/// One meaningful line of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqItem {
    /// A requirement (without its trailing options such as `--hash=`).
    Requirement { text: String, line: u32 },
    /// `-e VALUE` / `--editable VALUE`.
    Editable { value: String, line: u32 },
    /// `-r FILE` (`constraint: false`) or `-c FILE` (`constraint: true`).
    Include {
        path: String,
        line: u32,
        constraint: bool,
    },
}

/// Options that say where or how to install, not what: skipped.
const SKIPPED_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--no-index",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
    "-Z",
    "--always-unzip",
    "--config-settings",
    "--global-option",
    "--install-option",
    "--hash",
    "--process-dependency-links",
];

/// Split requirements text into items, and the problems found (1-based line, message).
pub fn parse_requirements_text(text: &str) -> (Vec<ReqItem>, Vec<(u32, String)>) {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for (line, logical) in logical_lines(text) {
        let content = strip_comment(&logical).trim();
        if content.is_empty() {
            continue;
        }
        if content.starts_with('-') {
            option_line(content, line, &mut items, &mut problems);
        } else {
            // pip's `break_args_options`: the requirement ends at the first word starting with
            // `-` (`--hash=...`, `--config-settings`).
            let mut words = Vec::new();
            for w in content.split_whitespace() {
                if w.starts_with('-') {
                    break;
                }
                words.push(w);
            }
            items.push(ReqItem::Requirement {
                text: words.join(" "),
                line,
            });
        }
    }
    (items, problems)
}

/// Join `\`-continued lines; each logical line keeps the number of its first physical line. A
/// comment line ends a continuation, as in pip.
fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start = 1u32;
    for (idx, raw) in text.lines().enumerate() {
        let n = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        if buf.is_empty() {
            start = n;
        }
        let is_comment = raw.trim_start().starts_with('#');
        match raw.strip_suffix('\\') {
            Some(head) if !is_comment => {
                buf.push_str(head);
                continue;
            }
            _ => {}
        }
        if is_comment {
            if !buf.is_empty() {
                out.push((start, std::mem::take(&mut buf)));
            }
            continue;
        }
        buf.push_str(raw);
        out.push((start, std::mem::take(&mut buf)));
    }
    if !buf.is_empty() {
        out.push((start, buf));
    }
    out
}

/// Remove a `#` comment: at the start of the line or after whitespace (a `#` inside a URL such
/// as `#egg=` is not a comment).
fn strip_comment(line: &str) -> &str {
    let mut prev_ws = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_ws {
            return line.get(..i).unwrap_or(line);
        }
        prev_ws = c.is_whitespace();
    }
    line
}

fn option_line(
    content: &str,
    line: u32,
    items: &mut Vec<ReqItem>,
    problems: &mut Vec<(u32, String)>,
) {
    let mut words = content.split_whitespace();
    let Some(first) = words.next() else { return };
    let (opt, inline) = match first.split_once('=') {
        Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
        _ => (first, None),
    };
    // `-rfile.txt` / `-efile`: a short option with its value attached.
    let (opt, inline) = match (opt.strip_prefix('-'), inline) {
        (Some(rest), None) if !rest.starts_with('-') && rest.len() > 1 => {
            let (o, v) = rest.split_at(1);
            (format!("-{o}"), Some(v.to_string()))
        }
        (_, inline) => (opt.to_string(), inline),
    };
    let value = inline
        .or_else(|| words.next().map(str::to_string))
        .unwrap_or_default();
    match opt.as_str() {
        "-r" | "--requirement" | "-c" | "--constraint" => {
            if value.is_empty() {
                problems.push((line, format!("`{opt}` without a file name; skipped")));
            } else {
                let constraint = matches!(opt.as_str(), "-c" | "--constraint");
                items.push(ReqItem::Include {
                    path: value,
                    line,
                    constraint,
                });
            }
        }
        "-e" | "--editable" => {
            if value.is_empty() {
                problems.push((line, format!("`{opt}` without a path or URL; skipped")));
            } else {
                items.push(ReqItem::Editable { value, line });
            }
        }
        o if SKIPPED_OPTIONS.contains(&o) => {}
        o => problems.push((line, format!("unknown option `{o}`; line skipped"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_lines() {
        let text = "# top\n\
            jeIlyfish==0.5.1 \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n\
            -r base.txt\n--requirement=more.txt\n-cconstraints.txt\n\
            -e git+https://example.invalid/x.git#egg=edit  # note\n\
            --index-url https://idx.example/simple\n\
            six ; python_version < \"3\"  # why\n\
            --bogus\n\
            url @ https://example.invalid/a.whl#sha256=00\n";
        let (items, problems) = parse_requirements_text(text);
        assert_eq!(
            items,
            vec![
                ReqItem::Requirement {
                    text: "jeIlyfish==0.5.1".into(),
                    line: 2
                },
                ReqItem::Include {
                    path: "base.txt".into(),
                    line: 5,
                    constraint: false
                },
                ReqItem::Include {
                    path: "more.txt".into(),
                    line: 6,
                    constraint: false
                },
                ReqItem::Include {
                    path: "constraints.txt".into(),
                    line: 7,
                    constraint: true
                },
                ReqItem::Editable {
                    value: "git+https://example.invalid/x.git#egg=edit".into(),
                    line: 8
                },
                ReqItem::Requirement {
                    text: "six ; python_version < \"3\"".into(),
                    line: 10
                },
                ReqItem::Requirement {
                    text: "url @ https://example.invalid/a.whl#sha256=00".into(),
                    line: 12
                },
            ]
        );
        assert_eq!(
            problems,
            vec![(11, "unknown option `--bogus`; line skipped".to_string())]
        );
    }

    #[test]
    fn comment_ends_continuation_and_crlf() {
        let (items, _) = parse_requirements_text("a \\\n# c \\\nb\r\nc\\");
        let texts: Vec<String> = items
            .into_iter()
            .filter_map(|i| match i {
                ReqItem::Requirement { text, line } => Some(format!("{line}:{text}")),
                _ => None,
            })
            .collect();
        assert_eq!(texts, vec!["1:a", "3:b", "4:c"]);
    }
}
