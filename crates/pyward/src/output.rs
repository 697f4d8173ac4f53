//! Writing reports and errors for people and machines.

use crate::cli::{ColorArg, FormatArg, OutputArgs};
use anyhow::Context;
use pyward_core::ScanReport;
use pyward_report::{Format, RenderOptions};
use std::io::{IsTerminal, Write};

pub fn format_of(arg: FormatArg) -> Format {
    match arg {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
        FormatArg::Cyclonedx => Format::CycloneDx,
    }
}

/// Whether to colour output going to a terminal: `--color`, then NO_COLOR, then a tty check.
pub fn use_color(arg: ColorArg, to_terminal: bool) -> bool {
    match arg {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Render `report` as asked and write it to `-o FILE` or standard output. The output file is
/// rendered whole before anything is written, and nothing but that file is written.
pub fn emit(report: &ScanReport, args: &OutputArgs) -> anyhow::Result<()> {
    let format = format_of(args.format);
    match &args.output {
        Some(path) => {
            let opts = RenderOptions {
                color: use_color(args.color, false),
                verbose: args.verbose,
            };
            let text = pyward_report::render(report, format, &opts);
            // Rendered whole before the file is opened, so a failure never leaves half a
            // report; written in place (no temporary file), so nothing else is ever created.
            std::fs::write(path, text.as_bytes())
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let opts = RenderOptions {
                color: use_color(args.color, stdout.is_terminal()),
                verbose: args.verbose,
            };
            let text = pyward_report::render(report, format, &opts);
            let mut lock = stdout.lock();
            // A closed pipe (`pyward scan x | head`) is not an error worth reporting.
            let _ = lock.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = lock.write_all(b"\n");
            }
            let _ = lock.flush();
        }
    }
    Ok(())
}

/// `error: <what> ... caused by: <why>` on standard error.
pub fn print_error(e: &anyhow::Error) {
    let color = use_color(ColorArg::Auto, std::io::stderr().is_terminal());
    let label = if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    let mut msg = format!("{label}: {e}");
    for cause in e.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
}

/// A warning line on standard error.
pub fn print_warning(text: &str) {
    let color = use_color(ColorArg::Auto, std::io::stderr().is_terminal());
    let label = if color {
        "\x1b[1;33mwarning\x1b[0m"
    } else {
        "warning"
    };
    eprintln!("{label}: {text}");
}
