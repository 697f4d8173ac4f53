//! The catalogue of heuristic rules: id, one-line description, severity, MITRE ATT&CK ids, and
//! whether a rule is a *threat* on its own or only a *capability* that needs company to matter.

use pyward_core::mitre::techniques;
use pyward_core::{MitreTechnique, Severity};

/// One heuristic rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    InstallHook,
    InstallTimeCode,
    DownloadExec,
    Exfiltration,
    SensitiveFileRead,
    RawIpUrl,
    ShadyDestination,
    ObfuscatedExec,
    EncodedCode,
    ApiObfuscation,
    SilentProcess,
    DirRecon,
    Clipboard,
    ClipboardHijack,
    Steganography,
    Unicode,
    SelfDelete,
    MassEncryption,
    ReverseShell,
    CryptoMiner,
    Persistence,
    /// Metadata signals, computed offline from the package itself.
    EmptyMetadata,
    ReleaseZero,
    SingleModule,
    BundledBinary,
    /// The METADATA `Name` differs from the name of its own `.dist-info`/`.egg-info` folder or
    /// wheel file: the package was renamed by hand after it was built.
    NameMismatch,
    /// A typosquat of a popular project that installs that project's import name, so
    /// `import <victim>` silently runs its code.
    ImportImitation,
    /// A typosquat whose home page points at the project it imitates (metadata copied).
    CopiedMetadata,
    /// YARA-X content rules, by the severity their meta gives (the finding names the rule).
    YaraCritical,
    YaraHigh,
    YaraMedium,
    /// A YARA rule whose meta says `kind = "capability"`.
    YaraCapability,
}

/// How a rule counts in the package score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Suspicious on its own.
    Threat,
    /// Common in benign code; it raises the score only alongside a threat.
    Capability,
}

// The ATT&CK techniques of the rules, from the shared catalogue in pyward-core.
const T_PY: MitreTechnique = techniques::PYTHON;
const T_SUPPLY: MitreTechnique = techniques::SUPPLY_CHAIN_SOFTWARE;
const T_OBF: MitreTechnique = techniques::OBFUSCATED_FILES;
const T_DEOBF: MitreTechnique = techniques::DEOBFUSCATE;
const T_INGRESS: MitreTechnique = techniques::INGRESS_TOOL_TRANSFER;
const T_EXFIL: MitreTechnique = techniques::EXFIL_C2;
const T_KEYS: MitreTechnique = techniques::PRIVATE_KEYS;
const T_CREDS: MitreTechnique = techniques::CREDENTIALS_IN_FILES;
const T_WEB: MitreTechnique = techniques::WEB_PROTOCOLS;
const T_WEBSVC: MitreTechnique = techniques::WEB_SERVICE;
const T_DISC: MitreTechnique = techniques::FILE_DISCOVERY;
const T_CLIP: MitreTechnique = techniques::CLIPBOARD_DATA;
const T_STEGO: MitreTechnique = techniques::STEGANOGRAPHY;
const T_HIDDEN: MitreTechnique = techniques::HIDDEN_WINDOW;
const T_DEL: MitreTechnique = techniques::FILE_DELETION;
const T_IMPACT: MitreTechnique = techniques::DATA_ENCRYPTED;
const T_SHELL: MitreTechnique = techniques::UNIX_SHELL;
const T_HIJACK: MitreTechnique = techniques::RESOURCE_HIJACKING;
const T_CRON: MitreTechnique = techniques::CRON;
const T_RC: MitreTechnique = techniques::SHELL_CONFIG_MODIFICATION;
const T_SYSTEMD: MitreTechnique = techniques::SYSTEMD_SERVICE;
const T_AUTOSTART: MitreTechnique = techniques::AUTOSTART;
const T_MANIP: MitreTechnique = techniques::TRANSMITTED_DATA_MANIPULATION;
const T_GEO: MitreTechnique = techniques::LOCATION_DISCOVERY;
const T_MASQ: MitreTechnique = techniques::MASQUERADING_NAME;

impl Rule {
    pub const ALL: [Rule; 32] = [
        Rule::InstallHook,
        Rule::InstallTimeCode,
        Rule::DownloadExec,
        Rule::Exfiltration,
        Rule::SensitiveFileRead,
        Rule::RawIpUrl,
        Rule::ShadyDestination,
        Rule::ObfuscatedExec,
        Rule::EncodedCode,
        Rule::ApiObfuscation,
        Rule::SilentProcess,
        Rule::DirRecon,
        Rule::Clipboard,
        Rule::ClipboardHijack,
        Rule::Steganography,
        Rule::Unicode,
        Rule::SelfDelete,
        Rule::MassEncryption,
        Rule::ReverseShell,
        Rule::CryptoMiner,
        Rule::Persistence,
        Rule::EmptyMetadata,
        Rule::ReleaseZero,
        Rule::SingleModule,
        Rule::BundledBinary,
        Rule::NameMismatch,
        Rule::ImportImitation,
        Rule::CopiedMetadata,
        Rule::YaraCritical,
        Rule::YaraHigh,
        Rule::YaraMedium,
        Rule::YaraCapability,
    ];

    /// Short id; the finding's `rule_id` is `heuristics.<id>` and its trigger is `<id>`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::InstallHook => "install-hook",
            Rule::InstallTimeCode => "install-time-code",
            Rule::DownloadExec => "download-exec",
            Rule::Exfiltration => "exfiltration",
            Rule::SensitiveFileRead => "sensitive-file-read",
            Rule::RawIpUrl => "raw-ip-url",
            Rule::ShadyDestination => "shady-destination",
            Rule::ObfuscatedExec => "obfuscated-exec",
            Rule::EncodedCode => "encoded-code",
            Rule::ApiObfuscation => "api-obfuscation",
            Rule::SilentProcess => "silent-process",
            Rule::DirRecon => "dir-recon",
            Rule::Clipboard => "clipboard",
            Rule::ClipboardHijack => "clipboard-hijack",
            Rule::Steganography => "steganography",
            Rule::Unicode => "unicode",
            Rule::SelfDelete => "self-delete",
            Rule::MassEncryption => "mass-encryption",
            Rule::ReverseShell => "reverse-shell",
            Rule::CryptoMiner => "crypto-miner",
            Rule::Persistence => "persistence",
            Rule::EmptyMetadata => "empty-metadata",
            Rule::ReleaseZero => "release-zero",
            Rule::SingleModule => "single-module",
            Rule::BundledBinary => "bundled-binary",
            Rule::NameMismatch => "name-mismatch",
            Rule::ImportImitation => "import-imitation",
            Rule::CopiedMetadata => "copied-metadata",
            Rule::YaraCritical => "yara-critical",
            Rule::YaraHigh => "yara-high",
            Rule::YaraMedium => "yara-medium",
            Rule::YaraCapability => "yara-capability",
        }
    }

    /// `heuristics.<id>`.
    pub fn rule_id(self) -> String {
        format!("heuristics.{}", self.id())
    }

    pub fn description(self) -> &'static str {
        match self {
            Rule::InstallHook => "setup.py overrides an install command (cmdclass), so code runs at pip install",
            Rule::InstallTimeCode => "network, process or exec calls run at install (setup.py) or import (__init__.py top level)",
            Rule::DownloadExec => "downloads code or a file and executes it",
            Rule::Exfiltration => "reads credentials, keys or environment variables and sends data over the network",
            Rule::SensitiveFileRead => "touches credential or key files (~/.ssh, ~/.gnupg, ~/.aws, ~/.kube, browser profiles, /etc/shadow)",
            Rule::RawIpUrl => "hard-coded URL to a raw public IP address",
            Rule::ShadyDestination => "hard-coded paste site, chat webhook, tunnel, or IP-geolocation service",
            Rule::ObfuscatedExec => "executes decoded or compiled data (exec/eval/compile of decoded strings, marshal.loads, pyarmor)",
            Rule::EncodedCode => "a string literal decodes to Python code",
            Rule::ApiObfuscation => "calls a dangerous function through reflection (getattr/__import__ with a string)",
            Rule::SilentProcess => "runs a process with its output silenced or its window hidden",
            Rule::DirRecon => "lists the user's home, Documents, Downloads or PycharmProjects",
            Rule::Clipboard => "reads or writes the clipboard",
            Rule::ClipboardHijack => "replaces clipboard contents with a hard-coded crypto-wallet address",
            Rule::Steganography => "decodes data hidden in an image and executes it",
            Rule::Unicode => "bidirectional-override Unicode characters in code (Trojan Source)",
            Rule::SelfDelete => "deletes its own script file (__file__ or sys.argv[0])",
            Rule::MassEncryption => "walks directories, encrypts or XORs file contents, writes them back and deletes or renames the originals",
            Rule::ReverseShell => "connects a shell to a remote socket",
            Rule::CryptoMiner => "references crypto-mining software or mining pools",
            Rule::Persistence => "installs itself to run again (cron, shell rc files, systemd units, autostart)",
            Rule::EmptyMetadata => "package metadata has neither a summary nor a home page",
            Rule::ReleaseZero => "version 0.0.0 (or 0.0), typical of throw-away malicious uploads",
            Rule::SingleModule => "the package holds a single Python module",
            Rule::BundledBinary => "native executable (ELF, PE or Mach-O) inside a package without compiled extensions",
            Rule::NameMismatch => "the METADATA name differs from the name of its own metadata folder or wheel file (renamed after it was built)",
            Rule::ImportImitation => "a look-alike of a popular project that installs that project's import name (drop-in impersonation)",
            Rule::CopiedMetadata => "a look-alike of a popular project whose home page is the imitated project's",
            Rule::YaraCritical | Rule::YaraHigh | Rule::YaraMedium | Rule::YaraCapability => {
                "content matches a YARA rule"
            }
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::ReverseShell | Rule::MassEncryption | Rule::DownloadExec | Rule::Exfiltration => {
                Severity::Critical
            }
            Rule::ObfuscatedExec
            | Rule::SelfDelete
            | Rule::CryptoMiner
            | Rule::Persistence
            | Rule::Steganography
            | Rule::InstallTimeCode
            | Rule::Unicode
            | Rule::ClipboardHijack => Severity::High,
            Rule::ShadyDestination
            | Rule::RawIpUrl
            | Rule::EncodedCode
            | Rule::SensitiveFileRead
            | Rule::DirRecon
            | Rule::ApiObfuscation => Severity::Medium,
            Rule::InstallHook
            | Rule::SilentProcess
            | Rule::Clipboard
            | Rule::EmptyMetadata
            | Rule::ReleaseZero
            | Rule::SingleModule => Severity::Low,
            Rule::BundledBinary
            | Rule::NameMismatch
            | Rule::ImportImitation
            | Rule::CopiedMetadata => Severity::Medium,
            Rule::YaraCritical => Severity::Critical,
            Rule::YaraHigh => Severity::High,
            Rule::YaraMedium => Severity::Medium,
            Rule::YaraCapability => Severity::Low,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Rule::InstallHook
            | Rule::SilentProcess
            | Rule::Clipboard
            | Rule::ApiObfuscation
            | Rule::SensitiveFileRead
            | Rule::RawIpUrl
            | Rule::DirRecon
            | Rule::EmptyMetadata
            | Rule::ReleaseZero
            | Rule::SingleModule
            | Rule::BundledBinary
            | Rule::YaraCapability => Kind::Capability,
            _ => Kind::Threat,
        }
    }

    pub fn mitre(self) -> Vec<MitreTechnique> {
        match self {
            Rule::InstallHook => vec![T_SUPPLY, T_PY],
            Rule::InstallTimeCode => vec![T_SUPPLY, T_PY],
            Rule::DownloadExec => vec![T_INGRESS, T_PY],
            Rule::Exfiltration => vec![T_EXFIL, T_KEYS, T_CREDS],
            Rule::SensitiveFileRead => vec![T_KEYS, T_CREDS],
            Rule::RawIpUrl => vec![T_WEB],
            Rule::ShadyDestination => vec![T_WEBSVC, T_GEO],
            Rule::ObfuscatedExec => vec![T_OBF, T_DEOBF, T_PY],
            Rule::EncodedCode => vec![T_OBF, T_DEOBF],
            Rule::ApiObfuscation => vec![T_OBF],
            Rule::SilentProcess => vec![T_HIDDEN],
            Rule::DirRecon => vec![T_DISC],
            Rule::Clipboard => vec![T_CLIP],
            Rule::ClipboardHijack => vec![T_CLIP, T_MANIP],
            Rule::Steganography => vec![T_STEGO, T_PY],
            Rule::Unicode => vec![T_OBF],
            Rule::SelfDelete => vec![T_DEL],
            Rule::MassEncryption => vec![T_IMPACT, T_DISC],
            Rule::ReverseShell => vec![T_SHELL, T_EXFIL],
            Rule::CryptoMiner => vec![T_HIJACK],
            Rule::Persistence => vec![T_CRON, T_RC, T_SYSTEMD, T_AUTOSTART],
            Rule::EmptyMetadata | Rule::ReleaseZero | Rule::SingleModule => vec![T_SUPPLY],
            Rule::BundledBinary => vec![T_SUPPLY, T_INGRESS],
            Rule::NameMismatch | Rule::ImportImitation | Rule::CopiedMetadata => {
                vec![T_MASQ, T_SUPPLY]
            }
            // Each YARA finding carries its own rule's techniques (meta `mitre`); this is the
            // fallback for rules without one.
            Rule::YaraCritical | Rule::YaraHigh | Rule::YaraMedium | Rule::YaraCapability => {
                vec![T_SUPPLY]
            }
        }
    }

    /// Weight in the package score, 0–10 (see [`crate::score`]).
    pub fn weight(self) -> f64 {
        match self.severity() {
            Severity::Critical => 8.0,
            Severity::High => 5.5,
            Severity::Medium => 2.5,
            Severity::Low => 1.0,
            Severity::Info => 0.0,
        }
    }

    /// ATT&CK stage a rule belongs to, for the attack-chain bonus.
    pub fn stage(self) -> Stage {
        match self {
            Rule::InstallHook
            | Rule::InstallTimeCode
            | Rule::ObfuscatedExec
            | Rule::EncodedCode
            | Rule::ApiObfuscation
            | Rule::SilentProcess
            | Rule::Unicode
            | Rule::Steganography => Stage::Execution,
            Rule::SensitiveFileRead | Rule::DirRecon | Rule::Clipboard | Rule::ClipboardHijack => {
                Stage::Collection
            }
            Rule::Exfiltration
            | Rule::RawIpUrl
            | Rule::ShadyDestination
            | Rule::DownloadExec
            | Rule::ReverseShell => Stage::Network,
            Rule::SelfDelete | Rule::MassEncryption | Rule::CryptoMiner | Rule::Persistence => {
                Stage::Impact
            }
            Rule::EmptyMetadata
            | Rule::ReleaseZero
            | Rule::SingleModule
            | Rule::BundledBinary
            | Rule::NameMismatch
            | Rule::ImportImitation
            | Rule::CopiedMetadata => Stage::Metadata,
            Rule::YaraCritical | Rule::YaraHigh | Rule::YaraMedium | Rule::YaraCapability => {
                Stage::Content
            }
        }
    }
}

/// Coarse attack stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Execution,
    Collection,
    Network,
    Impact,
    /// Metadata signals: no attack stage, never count for the chain bonus.
    Metadata,
    /// YARA content matches: their stage is unknown, so no chain bonus either.
    Content,
}
