//! pyward: protects Python workloads from malicious packages.
//!
//! This binary is wiring only: it parses the command line, runs the pipeline stages owned by the
//! library crates (inventory → intel → report) and maps the outcome to an exit code.

mod cli;
mod commands;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// Exit codes shared by every command (see DESIGN.md, "Conventions").
pub mod exit {
    /// Pass: GO or WARN, or no alert at or above `--fail-on`.
    pub const PASS: u8 = 0;
    /// Policy STOP, blocked install, alert.
    pub const STOP: u8 = 1;
    /// Usage or input error.
    pub const ERROR: u8 = 2;
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; real usage errors exit 2.
            let code = if e.use_stderr() {
                exit::ERROR
            } else {
                exit::PASS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(exit::ERROR)
        }
    }
}
