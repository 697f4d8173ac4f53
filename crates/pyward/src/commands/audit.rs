//! `pyward audit jupyter`: Jupyter exposure audit (configs, running servers, live probe, users
//! and SSH keys). Exit 1 when any finding is high or critical, 0 otherwise, 2 on usage errors.

use crate::cli::{FormatArg, OutputArgs};
use clap::{Args, Subcommand};
use pyward_audit::jupyter::{self, AuditOptions};
use pyward_core::{Target, TargetKind};
use std::path::PathBuf;

/// `pyward audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Find exposed Jupyter servers: every config location read statically, running servers
    /// (runtime files, /proc), a live probe on loopback, OS users, SSH keys, JupyterHub users.
    #[command(
        after_help = "Examples:\n  pyward audit jupyter\n  pyward audit jupyter --url http://127.0.0.1:8888/\n  pyward audit jupyter --root /mnt/snapshot --no-proc --format json -o audit.json\n  pyward audit jupyter --format sarif -o jupyter.sarif\n\nConfigs are never executed; probes are GET requests without credentials, on loopback unless\n--allow-remote-probe. Tokens are never printed.\nExit codes: 0 nothing high or critical, 1 a high or critical finding, 2 usage or input error."
    )]
    Jupyter(JupyterArgs),
}

#[derive(Debug, Args)]
pub struct JupyterArgs {
    /// Filesystem root to audit (a mounted snapshot or image works too).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Probe this server URL (repeatable), e.g. http://127.0.0.1:8888/.
    #[arg(long, value_name = "URL")]
    pub url: Vec<String>,
    /// Allow --url to point at a non-loopback address (only servers you may test).
    #[arg(long)]
    pub allow_remote_probe: bool,
    /// Do not look at running processes and sockets in /proc.
    #[arg(long)]
    pub no_proc: bool,
    /// Do not probe the running servers found (only the --url ones).
    #[arg(long)]
    pub no_probe: bool,
    /// Look for encrypted-looking files modified in the last N days in the notebook roots.
    #[arg(long, value_name = "N", default_value_t = jupyter::audit::DEFAULT_SINCE_DAYS)]
    pub since_days: u32,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Jupyter(args) => run_jupyter(args),
    }
}

fn run_jupyter(args: JupyterArgs) -> anyhow::Result<u8> {
    if matches!(args.output.format, FormatArg::Cyclonedx) {
        anyhow::bail!("--format cyclonedx does not apply to an audit; use table, json or sarif");
    }
    let mut opts = AuditOptions::host();
    opts.root = args.root.clone();
    opts.urls = args.url.clone();
    opts.allow_remote_probe = args.allow_remote_probe;
    opts.probe_running = !args.no_probe;
    opts.since_days = args.since_days;
    if args.no_proc {
        opts.proc_dir = None;
    }
    let result = jupyter::audit(&opts)?;
    let files = result.config_files.len() as u64;
    let code = result.exit_code();
    let report = super::build_report(
        Target {
            kind: TargetKind::Directory,
            name: format!("jupyter audit of {}", args.root.display()),
        },
        Vec::new(),
        result.findings,
        result.warnings,
        None,
        files,
    );
    crate::output::emit(&report, &args.output)?;
    Ok(code)
}
