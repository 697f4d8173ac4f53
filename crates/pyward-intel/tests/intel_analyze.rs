//! analyze(): findings and default decisions for the incident packages, files and clean input.

use pyward_core::{
    Action, DeclaredKind, Finding, InstalledKind, LayerRef, Location, Package, PackageSource,
    Severity,
};
use pyward_intel::{analyze, Intel, NameChecker};

fn installed(name: &str, version: &str, path: &str, layer: Option<LayerRef>) -> Package {
    let mut loc = Location::new(path);
    loc.layer = layer;
    Package::new(
        name,
        Some(version.into()),
        PackageSource::Installed(InstalledKind::DistInfo),
        loc,
    )
}

fn layer(i: usize) -> LayerRef {
    LayerRef {
        index: i,
        digest: format!("sha256:{i:064}"),
        diff_id: None,
        created_by: Some("RUN pip install python3-dateutil".into()),
    }
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Vec<&'a str> {
    f.evidence
        .iter()
        .filter(|e| e.key == key)
        .map(|e| e.value.as_str())
        .collect()
}

fn run(packages: &[Package], files: &[(&str, Option<LayerRef>)]) -> Vec<Finding> {
    analyze(
        &Intel::builtin(),
        &NameChecker::builtin(false),
        packages,
        files,
    )
}

#[test]
fn incident_image() {
    let site = "/usr/local/lib/python3.11/site-packages";
    let mut dateutil = installed(
        "python3-dateutil",
        "2.8.1",
        &format!("{site}/python3_dateutil-2.8.1.dist-info/METADATA"),
        Some(layer(2)),
    );
    dateutil.requires = vec!["jeIlyfish>=0.5".into()];
    let jelly = installed(
        "jeIlyfish",
        "0.5.1",
        &format!("{site}/jeIlyfish-0.5.1.dist-info/METADATA"),
        Some(layer(2)),
    );
    let ioc_path = format!("{site}/jeIlyfish/_jellyfish.py");
    let clean_path = format!("{site}/jeIlyfish/__init__.py");
    let files = [
        (ioc_path.as_str(), Some(layer(2))),
        (clean_path.as_str(), Some(layer(2))),
    ];
    let findings = run(&[dateutil, jelly], &files);

    // jeIlyfish: known malicious.
    let km: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == "intel.known-malicious")
        .collect();
    assert_eq!(km.len(), 2);
    let j = km
        .iter()
        .find(|f| f.package.as_ref().unwrap().name == "jeIlyfish")
        .unwrap();
    assert_eq!(
        (j.gate.as_str(), j.trigger.as_str()),
        ("intel", "known_malicious")
    );
    assert_eq!(j.action, Action::Stop);
    assert_eq!(j.severity, Severity::Critical);
    assert!(
        j.message.contains("jeIlyfish 0.5.1") && j.message.contains("PYWARD-2019-0001"),
        "{}",
        j.message
    );
    assert_eq!(evidence(j, "record"), ["PYWARD-2019-0001"]);
    assert_eq!(evidence(j, "ioc.ip"), ["68.183.212.246"]);
    assert_eq!(evidence(j, "ioc.port"), ["32258"]);
    assert_eq!(evidence(j, "ioc.file"), ["jeIlyfish/_jellyfish.py"]);
    assert!(j
        .references
        .iter()
        .any(|r| r.contains("dateutil/issues/984")));
    assert_eq!(j.mitre[0].id, "T1195.002");
    assert_eq!(j.layer.as_ref().map(|l| l.index), Some(2));
    assert!(j
        .path
        .as_deref()
        .unwrap()
        .ends_with("jeIlyfish-0.5.1.dist-info/METADATA"));

    // python3-dateutil: known malicious, malicious dependency, typosquat of python-dateutil.
    let d = km
        .iter()
        .find(|f| f.package.as_ref().unwrap().name == "python3-dateutil")
        .unwrap();
    assert!(d.message.contains("PYWARD-2019-0002"));
    let dep = findings
        .iter()
        .find(|f| f.rule_id == "intel.malicious-dependency")
        .unwrap();
    assert_eq!(dep.action, Action::Stop);
    assert_eq!(evidence(dep, "dependency"), ["jeIlyfish"]);

    let squats: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == "names.typosquat")
        .collect();
    assert_eq!(squats.len(), 2);
    for s in &squats {
        assert_eq!(
            (s.gate.as_str(), s.trigger.as_str()),
            ("names", "typosquat")
        );
        assert_eq!(s.action, Action::Stop, "high-confidence squat");
        assert!(s.mitre.iter().any(|m| m.id == "T1036.005"));
        assert_eq!(evidence(s, "confidence"), ["high"]);
    }
    let sd = squats
        .iter()
        .find(|f| f.package.as_ref().unwrap().name == "python3-dateutil")
        .unwrap();
    assert_eq!(evidence(sd, "imitates"), ["python-dateutil"]);
    assert!(sd.message.contains("python-dateutil"));
    let sj = squats
        .iter()
        .find(|f| f.package.as_ref().unwrap().name == "jeIlyfish")
        .unwrap();
    assert_eq!(evidence(sj, "imitates"), ["jellyfish"]);
    assert!(
        evidence(sj, "spelling")[0].contains("`I` where jellyfish has `l`"),
        "{:?}",
        sj.evidence
    );
    assert!(evidence(sj, "transformation")[0].starts_with("case-confusable"));

    // The IOC file, with its layer; the clean file is not reported.
    let ioc: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.trigger == "ioc_file")
        .collect();
    assert_eq!(ioc.len(), 1);
    assert_eq!(ioc[0].gate, "files");
    assert_eq!(ioc[0].action, Action::Stop);
    assert_eq!(ioc[0].path.as_deref(), Some(ioc_path.as_str()));
    assert_eq!(ioc[0].layer.as_ref().map(|l| l.index), Some(2));
    assert!(ioc[0].package.is_none());

    assert_eq!(
        Action::combine(findings.iter().map(Finding::effective_action)),
        Action::Stop
    );
}

#[test]
fn one_finding_per_location() {
    let a = installed(
        "jeIlyfish",
        "0.5.1",
        "/venv1/jeIlyfish-0.5.1.dist-info/METADATA",
        None,
    );
    let b = installed(
        "jeIlyfish",
        "0.5.1",
        "/venv2/jeIlyfish-0.5.1.dist-info/METADATA",
        None,
    );
    let mut req = Package::new(
        "jeilyfish",
        Some("0.5.1".into()),
        PackageSource::Declared(DeclaredKind::Requirements),
        Location::new("requirements.txt").with_line(3),
    );
    req.specifier = Some("==0.5.1".into());
    let findings = run(&[a.clone(), b, req, a], &[]);
    let km: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == "intel.known-malicious")
        .collect();
    assert_eq!(km.len(), 3, "three locations, the duplicate dropped");
    let r = km
        .iter()
        .find(|f| f.path.as_deref() == Some("requirements.txt"))
        .unwrap();
    assert_eq!(r.line, Some(3));
    assert_eq!(
        r.package.as_ref().unwrap().name,
        "jeilyfish",
        "spelling as found"
    );
}

#[test]
fn clean_packages_give_nothing() {
    let pkgs: Vec<Package> = [
        "requests",
        "python-dateutil",
        "jellyfish",
        "numpy",
        "Django",
        "typing_extensions",
    ]
    .iter()
    .map(|n| installed(n, "1.0", &format!("/site/{n}-1.0.dist-info/METADATA"), None))
    .collect();
    let files = [
        ("/site/jellyfish/_jellyfish.py", None),
        ("/site/requests/__init__.py", None),
    ];
    let findings = run(&pkgs, &files);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn medium_squat_is_warn() {
    let p = installed(
        "requests-secure",
        "1.0",
        "/site/requests_secure-1.0.dist-info/METADATA",
        None,
    );
    let findings = run(&[p], &[]);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].action, Action::Warn);
    assert_eq!(findings[0].severity, Severity::Medium);
    assert_eq!(evidence(&findings[0], "imitates"), ["requests"]);
}

#[test]
fn version_ranges_decide() {
    // A record for one version range only: other versions are clean.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("r.json");
    std::fs::write(
        &src,
        r#"{"id":"MAL-2025-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"hijacked-lib"},
           "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"1.2"}]}]}]}"#,
    )
    .unwrap();
    let db = dir.path().join("intel.sqlite");
    pyward_intel::import(&db, &src).unwrap();
    let intel = Intel::open(Some(&db)).unwrap();
    let names = NameChecker::builtin(false);
    let bad = installed("hijacked-lib", "1.1", "/s/a/METADATA", None);
    let good = installed("hijacked-lib", "1.2", "/s/b/METADATA", None);
    let f = analyze(&intel, &names, &[bad, good], &[]);
    let km: Vec<&Finding> = f
        .iter()
        .filter(|f| f.rule_id == "intel.known-malicious")
        .collect();
    assert_eq!(km.len(), 1);
    assert_eq!(
        km[0].package.as_ref().unwrap().version.as_deref(),
        Some("1.1")
    );
    assert!(km[0].message.contains("MAL-2025-1"));
}
