//! `pyward policy check FILE...`: validate and lint scan policies.

use crate::cli::PolicyCommand;
use std::io::Write;

pub fn run(cmd: PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        PolicyCommand::Check { files } => check(&files),
    }
}

fn check(files: &[std::path::PathBuf]) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for path in files {
        let name = path.display().to_string();
        match pyward_policy::load_file(path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    writeln!(out, "{name}:{}: warning: {}", w.pos, w.message)?;
                }
                let b = &loaded.bundle;
                let rules: usize = b.rule_sets.iter().map(|s| s.rules.len()).sum();
                writeln!(
                    out,
                    "{name}: ok: {} `{}`, {rules} rule{} in {} rule set{}, {} warning{}",
                    b.format.label(),
                    b.id,
                    if rules == 1 { "" } else { "s" },
                    b.rule_sets.len(),
                    if b.rule_sets.len() == 1 { "" } else { "s" },
                    loaded.warnings.len(),
                    if loaded.warnings.len() == 1 { "" } else { "s" },
                )?;
            }
            Err(e) => {
                failed = true;
                for w in &e.warnings {
                    writeln!(out, "{name}:{}: warning: {}", w.pos, w.message)?;
                }
                for p in &e.errors {
                    writeln!(out, "{name}:{}: error: {}", p.pos, p.message)?;
                }
                writeln!(
                    out,
                    "{name}: invalid: {} error{}",
                    e.errors.len(),
                    if e.errors.len() == 1 { "" } else { "s" }
                )?;
            }
        }
    }
    Ok(if failed {
        crate::exit::ERROR
    } else {
        crate::exit::PASS
    })
}
