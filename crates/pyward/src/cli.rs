use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Protects Python workloads from malicious packages: finds known-malicious and typosquatted
/// packages in folders, lockfiles, package archives and container images, and stops them before
/// pip installs them.
#[derive(Debug, Parser)]
#[command(
    name = "pyward",
    version,
    propagate_version = true,
    after_help = "Examples:\n  pyward scan image.tar                 scan a `docker save` image\n  pyward scan .venv                     scan a virtualenv\n  pyward scan requirements.txt          check declared dependencies\n  pyward vet jellyfish python3-dateutil check names before installing\n  pyward pip install -r requirements.txt   vet pip's full resolution, then install\n  pyward scan image.tar --policy policies/jeilyfish.yaml   gate CI with a policy\n  pyward policy check my-policy.yaml    validate a policy (pyward YAML or Anchore JSON)\n  pyward intel import PyPI-osv.zip      add OSV malicious-package records, offline\n  pyward rules check falco_rules.yaml   load and lint Falco rules files\n  pyward rules replay --rules rules/pyward_rules.yaml events.jsonl\n\nExit codes: 0 pass (GO or WARN), 1 STOP or blocked, 2 usage or input error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every Python package in a folder, file, package archive or container image and check
    /// it against threat intelligence and look-alike names.
    #[command(
        after_help = "Examples:\n  pyward scan examples/incident-1/out/image.tar   # after scripts/demo.sh\n  pyward scan /path/to/venv --format json -o report.json\n  pyward scan oci-layout-dir/ --image-ref myapp:1.2\n  pyward scan requirements.txt\n  pyward scan dist/pkg-1.0-py3-none-any.whl\n  pyward scan image.tar --format sarif -o pyward.sarif   # for GitHub code scanning\n  pyward scan image.tar --format cyclonedx -o sbom.json\n\nTARGET kinds: a folder (root filesystem, virtualenv, site-packages, project), a\nrequirements/pyproject/lock file or Dockerfile, a package archive (.whl, .tar.gz, .zip, .egg),\na `docker save` tarball, an OCI image layout folder or an OCI archive. Nothing in the target is\never executed, and no container engine is needed."
    )]
    Scan(ScanArgs),

    /// Check requirement specs before anything is installed; exits 1 if any is known-malicious or
    /// a high-confidence typosquat.
    #[command(
        after_help = "Examples:\n  pyward vet python3-dateutil\n  pyward vet 'requests>=2' jeIlyfish==0.5.1\n  pyward vet -r requirements.txt\n\nOnly the names and versions written are checked; use `pyward pip install` to vet every\npackage pip would install, transitive dependencies included."
    )]
    Vet(VetArgs),

    /// Run pip through pyward: resolve what `pip install` would install (pip's own resolver),
    /// vet every package, then install only that set.
    #[command(
        after_help = "Examples:\n  pyward pip install requests\n  pyward pip install -r requirements.txt\n  pyward pip --python .venv/bin/python install -r requirements.txt\n  pyward pip install --index-url http://127.0.0.1:8080/simple mypkg\n\nSteps: (1) the names given are vetted before pip is even started; (2) `pip install\n--dry-run --report` resolves the full set; (3) every package of it is vetted; (4) only\nif none is blocked, the real `pip install` runs, constrained to exactly the vetted versions.\nBy default the resolution uses wheels only, because resolving an sdist runs its build code\nbefore pyward could vet it; pass --allow-build to let pip build sdists during resolution."
    )]
    Pip(PipArgs),

    /// Manage the local threat-intelligence database (OSV records, used offline).
    #[command(subcommand)]
    Intel(IntelCommand),

    /// Scan policies: validate and lint policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Runtime rules in Falco's language: check rules files, replay recorded events.
    #[command(subcommand)]
    Rules(crate::commands::rules::RulesCommand),

    /// Host audits: `pyward audit jupyter` finds exposed Jupyter servers before attackers do.
    #[command(subcommand)]
    Audit(crate::commands::audit::AuditCommand),

    /// Watch the whole host live (eBPF, root): evaluate runtime rules on kernel events and
    /// print Falco-shaped alerts.
    #[command(
        after_help = "Examples:\n  sudo pyward watch\n  sudo pyward watch --rules falco_rules.yaml --rules rules/pyward_rules.yaml --format json\n  sudo pyward watch --duration 60 --record events.jsonl --stats\n\nDefault rules: pyward's built-in rules/pyward_rules.yaml. Stops on SIGINT/SIGTERM (or after\n--duration) and prints counts. A --record file replays with `pyward rules replay`."
    )]
    Watch(crate::commands::watch::WatchArgs),

    /// Run a command and watch only it and its descendants (eBPF, root); exit with the
    /// command's code, or 1 if an alert at or above --fail-on fired.
    #[command(
        after_help = "Examples:\n  sudo pyward run -- pip install -r requirements.txt\n  sudo pyward run --fail-on warning --alerts alerts.jsonl -- python3 setup.py build"
    )]
    Run(crate::commands::watch::RunArgs),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Report format.
    #[arg(long, short = 'f', value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// List every package in the table report, not only the findings.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Colour the table: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

#[derive(Debug, Args)]
pub struct IntelArgs {
    /// Threat-intelligence database (default: $PYWARD_DATA_DIR/intel.sqlite or the XDG data
    /// folder, e.g. ~/.local/share/pyward/intel.sqlite).
    #[arg(long, value_name = "PATH")]
    pub intel_db: Option<PathBuf>,
    /// Also flag popular packages that look like other popular packages.
    #[arg(long)]
    pub include_popular: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Folder, file, package archive or image to scan.
    pub target: PathBuf,
    /// For an image archive holding several images: the tag or digest to scan.
    #[arg(long, value_name = "REF")]
    pub image_ref: Option<String>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Scan policy (pyward YAML or an Anchore/Sysdig JSON bundle); repeatable, the final action
    /// is the lowest of all. Default: the built-in policies/default.yaml.
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<PathBuf>,
    /// The image's actual Dockerfile, for the policy's `dockerfile` gate (otherwise the one found
    /// in a scanned folder, or the one reconstructed from the image history).
    #[arg(long, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// squashed: what a container sees; all: also files and packages that a later layer deleted.
    #[arg(long, value_enum, default_value_t = LayersArg::Squashed)]
    pub layers: LayersArg,
    /// A previous pyward JSON report or CycloneDX SBOM, for the policy's `drift` gate.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Skip the static analysis of package code (the policy's `heuristics` gate then sees
    /// nothing). It is on by default: it parses only files whose tokens could make a threat.
    #[arg(long)]
    pub no_analyze: bool,
    /// More YARA-X rules: every `*.yar`/`*.yara` file under DIR, applied with pyward's own
    /// rules to every analysed file (repeatable). A rule that does not compile stops the scan.
    #[arg(long, value_name = "DIR")]
    pub yara: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub intel: IntelArgs,
}

/// Which files of an image the policy sees.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LayersArg {
    Squashed,
    All,
}

/// `pyward policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate and lint policy files: errors and warnings with line and column, including
    /// every regex that Anchore (Python re.match) would apply differently. Exit 0 when valid.
    #[command(
        after_help = "Examples:\n  pyward policy check policies/jeilyfish.yaml\n  pyward policy check my-anchore-bundle.json"
    )]
    Check {
        /// Policy files (YAML or Anchore/Sysdig JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct VetArgs {
    /// Requirement specs (PEP 508), e.g. `requests>=2`, `jeIlyfish==0.5.1`.
    #[arg(value_name = "SPEC", required_unless_present = "requirements")]
    pub specs: Vec<String>,
    /// Read specs from a requirements file (repeatable; `-r`/`-c` includes are followed).
    #[arg(long, short = 'r', value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub intel: IntelArgs,
}

#[derive(Debug, Args)]
pub struct PipArgs {
    /// Python interpreter whose pip to use (default: python3 on PATH).
    #[arg(long, value_name = "PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Let pip build sdists while resolving (runs their build code before pyward vets them).
    #[arg(long)]
    pub allow_build: bool,
    /// Resolve and vet only; never run the real install.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub intel: IntelArgs,
    /// The pip command and its arguments, e.g. `install -r requirements.txt`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "PIP_ARGS"
    )]
    pub pip_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Import OSV records (a folder of OSV JSON files, or a zip such as OSV's PyPI export or a
    /// checkout of ossf/malicious-packages), including MAL- malicious-package records.
    #[command(
        after_help = "Examples:\n  pyward intel import ~/Downloads/PyPI-all.zip\n  pyward intel import malicious-packages/osv/malicious/pypi\n\nRecords are stored in the local database and used offline by every scan."
    )]
    Import {
        /// Folder or zip of OSV JSON records.
        path: PathBuf,
        #[arg(long, value_name = "PATH")]
        intel_db: Option<PathBuf>,
    },
    /// Say what threat intelligence is loaded and from when.
    #[command(after_help = "Example:\n  pyward intel status")]
    Status {
        #[arg(long, value_name = "PATH")]
        intel_db: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}
