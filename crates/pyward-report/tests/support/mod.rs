//! Realistic reports for the renderer tests: the incident-1 image (jeIlyfish and
//! python3-dateutil installed by one layer), a clean one, and one full of hostile strings.
#![allow(dead_code)]

use pyward_core::mitre::techniques;
use pyward_core::{
    Action, DeclaredKind, Finding, ImageSummary, InstalledKind, LayerRef, Location, Package,
    PackageSource, PolicyMatch, ScanReport, Severity, Target, TargetKind, Tool, Warning,
    REPORT_SCHEMA_VERSION,
};

pub const SITE: &str = "/usr/local/lib/python3.12/site-packages";

pub fn layer(index: usize, created_by: &str) -> LayerRef {
    LayerRef {
        index,
        digest: format!(
            "sha256:{}",
            format!("{index:x}").repeat(64).get(..64).unwrap_or("0")
        ),
        diff_id: Some(format!("sha256:{}", "d".repeat(63) + &index.to_string())),
        created_by: Some(created_by.to_string()),
    }
}

fn installed(name: &str, version: &str, layer: &LayerRef) -> Package {
    let mut loc = Location::new(format!("{SITE}/{name}-{version}.dist-info/METADATA"));
    loc.layer = Some(layer.clone());
    let mut p = Package::new(
        name,
        Some(version.to_string()),
        PackageSource::Installed(InstalledKind::DistInfo),
        loc,
    );
    p.installer = Some("pip".into());
    p
}

fn empty_report(kind: TargetKind, name: &str) -> ScanReport {
    ScanReport {
        schema_version: REPORT_SCHEMA_VERSION.to_string(),
        tool: Tool {
            name: "pyward".into(),
            version: "0.1.0".into(),
        },
        target: Target {
            kind,
            name: name.into(),
        },
        final_action: Action::Go,
        image: None,
        packages: Vec::new(),
        findings: Vec::new(),
        warnings: Vec::new(),
        files_scanned: 0,
        generated_at: "2026-11-24T10:43:02Z".into(),
    }
}

/// Incident 1: `RUN pip install python3-dateutil` pulled in `jeIlyfish`; a declared typosquat
/// (`reqeusts`) in the app's requirements; `six` clean, found twice; one unreadable METADATA.
pub fn incident_report() -> ScanReport {
    let base = layer(0, "/bin/sh -c #(nop) ADD file:0123 in / ");
    let six_layer = layer(1, "/bin/sh -c pip install six==1.16.0");
    let bad = layer(2, "/bin/sh -c pip install     python3-dateutil");

    let mut jelly = installed("jeIlyfish", "0.5.1", &bad);
    jelly.files = vec![
        format!("{SITE}/jeIlyfish/_jellyfish.py"),
        format!("{SITE}/jeIlyfish/__init__.py"),
    ];
    jelly.top_level = vec!["jeIlyfish".into()];
    jelly.summary = Some("a library for doing approximate and phonetic matching of strings".into());
    let mut dateutil = installed("python3-dateutil", "2.8.1", &bad);
    dateutil.requires = vec!["jeIlyfish".into()];
    dateutil.license = Some("BSD".into());
    let six = installed("six", "1.16.0", &six_layer);
    let mut six_again = installed("six", "1.16.0", &base);
    six_again.location.path = "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA".into();
    let mut reqeusts = Package::new(
        "reqeusts",
        Some("2.31.0".into()),
        PackageSource::Declared(DeclaredKind::Requirements),
        Location::new("/app/requirements.txt").with_line(3),
    );
    reqeusts.location.layer = Some(six_layer.clone());
    reqeusts.specifier = Some("==2.31.0".into());

    let mut findings = vec![
        Finding::new(
            "intel.known-malicious",
            "intel",
            "known_malicious",
            Action::Stop,
            Severity::Critical,
            "jeIlyfish 0.5.1 is a known-malicious package: it steals SSH and GPG keys",
        )
        .for_package(&jelly)
        .with_mitre([
            techniques::SUPPLY_CHAIN_DEPENDENCIES,
            techniques::PRIVATE_KEYS,
        ])
        .with_evidence("record", "PYWARD-2019-0001")
        .with_evidence("ioc.ip", "68.183.212.246")
        .with_evidence("ioc.port", "32258")
        .with_evidence("ioc.file", "jeIlyfish/_jellyfish.py"),
        Finding::new(
            "names.typosquat",
            "names",
            "typosquat",
            Action::Stop,
            Severity::High,
            "jeIlyfish imitates jellyfish",
        )
        .for_package(&jelly)
        .with_mitre([techniques::MASQUERADING_NAME])
        .with_evidence("imitates", "jellyfish")
        .with_evidence("transformation", "look-alike characters (I/l)")
        .with_evidence("confidence", "0.98"),
        Finding::new(
            "intel.known-malicious",
            "intel",
            "known_malicious",
            Action::Stop,
            Severity::Critical,
            "python3-dateutil 2.8.1 is a known-malicious package: it installs jeIlyfish",
        )
        .for_package(&dateutil)
        .with_mitre([techniques::SUPPLY_CHAIN_DEPENDENCIES]),
        Finding::new(
            "names.typosquat",
            "names",
            "typosquat",
            Action::Stop,
            Severity::High,
            "python3-dateutil imitates python-dateutil",
        )
        .for_package(&dateutil)
        .with_mitre([techniques::MASQUERADING_NAME])
        .with_evidence("imitates", "python-dateutil")
        .with_evidence("transformation", "python prefix with version digit"),
        Finding::new(
            "names.typosquat",
            "names",
            "typosquat",
            Action::Warn,
            Severity::Medium,
            "reqeusts imitates requests",
        )
        .for_package(&reqeusts)
        .with_mitre([techniques::MASQUERADING_NAME])
        .with_evidence("imitates", "requests")
        .with_evidence("transformation", "adjacent swap")
        .with_evidence("confidence", "0.7"),
        Finding::new(
            "files.ioc",
            "files",
            "name_match",
            Action::Stop,
            Severity::High,
            "file known from the jeIlyfish attack",
        )
        .with_mitre([techniques::PYTHON]),
    ];
    findings[0].references = vec![
        "PYWARD-2019-0001".into(),
        "https://github.com/dateutil/dateutil/issues/984".into(),
    ];
    let ioc_file = format!("{SITE}/jeIlyfish/_jellyfish.py");
    if let Some(f) = findings.last_mut() {
        f.path = Some(ioc_file);
        f.layer = Some(bad.clone());
    }

    let mut r = empty_report(TargetKind::DockerArchive, "incident1.tar");
    r.image = Some(ImageSummary {
        repo_tags: vec!["incident1:latest".into()],
        config_digest: Some(format!("sha256:{}", "c".repeat(64))),
        manifest_digest: None,
        os: Some("linux".into()),
        architecture: Some("amd64".into()),
        layers: vec![base, six_layer, bad],
        dockerfile: vec![
            "ADD file:0123 in /".into(),
            "RUN pip install six==1.16.0".into(),
            "RUN pip install python3-dateutil".into(),
        ],
    });
    r.packages = vec![reqeusts, six, jelly, dateutil, six_again];
    r.findings = findings;
    r.warnings = vec![Warning::new(
        "/usr/lib/python3/dist-packages/broken-1.0.dist-info/METADATA",
        "METADATA is not valid UTF-8; package skipped",
    )];
    r.files_scanned = 1234;
    r.decide();
    r
}

/// A clean folder scan: many packages, no findings.
pub fn clean_report(n: usize) -> ScanReport {
    let mut r = empty_report(TargetKind::Directory, "venv");
    r.packages = (0..n)
        .map(|i| {
            Package::new(
                format!("pkg{i}"),
                Some(format!("1.{i}")),
                PackageSource::Installed(InstalledKind::DistInfo),
                Location::new(format!(
                    "lib/python3.12/site-packages/pkg{i}-1.{i}.dist-info/METADATA"
                )),
            )
        })
        .collect();
    r.files_scanned = 10 * n as u64;
    r.decide();
    r
}

/// Strings a hostile package could carry: terminal escapes, bidi overrides, URI metacharacters,
/// non-ASCII, an empty version, line 0, a bad timestamp, an allowlisted finding.
pub fn hostile_report() -> ScanReport {
    let evil_name = "evil\x1b[2J\x1b[31mpkg\u{202e}yp.";
    let mut p = Package::new(
        evil_name,
        Some("1.0 ?#%\x07".into()),
        PackageSource::Declared(DeclaredKind::Requirements),
        Location::new("reqs dir/ünïcode?#%.txt").with_line(0),
    );
    p.home_page = Some("javascript:alert(1)".into());
    p.license = Some("   ".into());
    let nover = Package::new(
        "nover",
        None,
        PackageSource::Declared(DeclaredKind::Pyproject),
        Location::new("C:weird/pyproject.toml"),
    );
    let mut allowlisted = Finding::new(
        "names.typosquat",
        "names",
        "typosquat",
        Action::Stop,
        Severity::High,
        "nover imitates nose\r\n\x1b[32mGO: all clear",
    )
    .for_package(&nover);
    allowlisted.policy = Some(PolicyMatch {
        policy_id: "default".into(),
        rule_id: "r1".into(),
        trigger_id: "abc".into(),
        allowlisted_by: Some("team-allowlist".into()),
    });
    let mut f = Finding::new(
        "custom rule with spaces",
        "names",
        "typosquat\x1b]0;title\x07",
        Action::Warn,
        Severity::Info,
        "",
    )
    .for_package(&p)
    .with_evidence("imitates", "x".repeat(10_000))
    .with_evidence("\x1b[1mkey", "\u{202e}value");
    f.references = vec!["https://x.invalid/a b".into(), "not an id!".into()];
    let target_level = Finding::new(
        "intel.known-malicious",
        "intel",
        "known_malicious",
        Action::Warn,
        Severity::Low,
        "no package, no path",
    );
    let mut r = empty_report(TargetKind::Specs, "");
    r.generated_at = "not a time".into();
    r.packages = vec![p, nover];
    r.findings = vec![f, allowlisted, target_level];
    r.warnings = vec![Warning::new("\x1b[2Jinput", "message\u{202e}")];
    r.decide();
    r
}
