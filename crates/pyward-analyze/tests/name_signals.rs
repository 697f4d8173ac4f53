//! Name/metadata mismatch signals: a METADATA name that is not its folder's or wheel's, a
//! look-alike that installs the imitated project's import name, a look-alike whose home page is
//! the imitated project's; and the benign shapes that must stay quiet.

use pyward_analyze::{analyze_package, name_signals, Options, Rule};
use pyward_core::{ArchiveKind, InstalledKind, Location, Package, PackageSource};
use pyward_inventory::{EntryKind, FileEntry, MemTree};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

fn installed(name: &str, folder: &str, files: &[&str]) -> Package {
    let mut p = Package::new(
        name,
        Some("1.0".into()),
        PackageSource::Installed(InstalledKind::DistInfo),
        Location::new(format!(
            "/venv/lib/python3.11/site-packages/{folder}/METADATA"
        )),
    );
    p.files = files
        .iter()
        .map(|f| format!("/venv/lib/python3.11/site-packages/{f}"))
        .collect();
    p
}

fn rules(p: &Package) -> BTreeSet<Rule> {
    name_signals(p).into_iter().map(|(r, _, _)| r).collect()
}

#[test]
fn metadata_name_differs_from_its_folder() {
    let p = installed(
        "requests",
        "reqeusts-1.0.dist-info",
        &["reqeusts-1.0.dist-info/METADATA", "requests/__init__.py"],
    );
    let s = name_signals(&p);
    let (r, detail, file) = s
        .iter()
        .find(|(r, _, _)| *r == Rule::NameMismatch)
        .unwrap_or_else(|| panic!("{s:?}"));
    assert_eq!(*r, Rule::NameMismatch);
    assert!(detail.contains("reqeusts-1.0.dist-info"), "{detail}");
    assert!(file.as_deref().unwrap().ends_with("METADATA"));
    // Escaped and differently-cased spellings of the same name are not a mismatch.
    for (name, folder) in [
        ("zope.interface", "zope.interface-6.0.dist-info"),
        ("python-dateutil", "python_dateutil-2.9.0.dist-info"),
        ("PyYAML", "PyYAML-6.0.1.dist-info"),
        ("Twisted", "twisted-24.3.0-py3.11.egg-info"),
    ] {
        let p = installed(name, folder, &[&format!("{folder}/METADATA")]);
        assert!(!rules(&p).contains(&Rule::NameMismatch), "{name} {folder}");
    }
}

#[test]
fn wheel_file_name_must_match_metadata() {
    let mut p = Package::new(
        "jeIlyfish",
        Some("0.6.0".into()),
        PackageSource::Archive(ArchiveKind::Wheel),
        Location::new("dl/jellyfish-0.6.0-py3-none-any.whl"),
    );
    p.files = vec!["jeIlyfish-0.6.0.dist-info/METADATA".into()];
    assert!(rules(&p).contains(&Rule::NameMismatch));
    p.location = Location::new("dl/jeIlyfish-0.6.0-py3-none-any.whl");
    assert!(!rules(&p).contains(&Rule::NameMismatch));
    // A wheel renamed to something that is not a wheel name says nothing.
    p.location = Location::new("dl/package.whl");
    assert!(!rules(&p).contains(&Rule::NameMismatch));
}

#[test]
fn look_alike_installing_the_victims_import_name() {
    // jeIlyfish shipping a `jellyfish` package: `import jellyfish` runs its code.
    let p = installed(
        "jeIlyfish",
        "jeIlyfish-0.6.dist-info",
        &["jeIlyfish-0.6.dist-info/METADATA", "jellyfish/__init__.py"],
    );
    let s = name_signals(&p);
    let hit = s
        .iter()
        .find(|(r, _, _)| *r == Rule::ImportImitation)
        .unwrap_or_else(|| panic!("{s:?}"));
    assert!(hit.1.contains("jellyfish"), "{}", hit.1);
    // python3-dateutil installing `dateutil` (the core of python-dateutil).
    let mut p = installed(
        "python3-dateutil",
        "python3_dateutil-2.9.dist-info",
        &["python3_dateutil-2.9.dist-info/METADATA"],
    );
    p.top_level = vec!["dateutil".into()];
    assert!(
        rules(&p).contains(&Rule::ImportImitation),
        "{:?}",
        rules(&p)
    );
    // Its own import name only: no imitation.
    let p = installed(
        "jeIlyfish",
        "jeIlyfish-0.6.dist-info",
        &["jeIlyfish-0.6.dist-info/METADATA", "jeIlyfish/__init__.py"],
    );
    assert!(!rules(&p).contains(&Rule::ImportImitation));
    // The real project is not a look-alike of itself.
    let p = installed(
        "jellyfish",
        "jellyfish-1.0.dist-info",
        &["jellyfish-1.0.dist-info/METADATA", "jellyfish/__init__.py"],
    );
    assert!(rules(&p).is_empty(), "{:?}", rules(&p));
}

#[test]
fn look_alike_pointing_at_the_victims_home_page() {
    let mut p = installed(
        "python3-dateutil",
        "python3_dateutil-2.9.dist-info",
        &["python3_dateutil-2.9.dist-info/METADATA"],
    );
    p.home_page = Some("https://github.com/dateutil/dateutil".into());
    assert!(rules(&p).contains(&Rule::CopiedMetadata), "{:?}", rules(&p));
    // A home page of its own is fine, and so is any home page of a non-look-alike.
    p.home_page = Some("https://example.org/python3-dateutil".into());
    assert!(!rules(&p).contains(&Rule::CopiedMetadata));
    let mut q = installed("acme-tools", "acme_tools-1.0.dist-info", &[]);
    q.home_page = Some("https://github.com/psf/requests".into());
    assert!(rules(&q).is_empty(), "{:?}", rules(&q));
}

#[test]
fn signals_join_the_package_findings() {
    // A look-alike that installs the victim's import name and runs a decoded payload.
    let path = "/venv/lib/python3.11/site-packages/jellyfish/__init__.py";
    let src = b"import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n";
    let t = MemTree::from_parts(
        "t",
        vec![FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size: src.len() as u64,
            mode: 0o644,
            layer: None,
        }],
        HashMap::from([(path.to_string(), Arc::<[u8]>::from(&src[..]))]),
        Vec::new(),
    );
    let mut p = installed(
        "jeIlyfish",
        "jeIlyfish-0.6.dist-info",
        &["jellyfish/__init__.py"],
    );
    p.summary = Some("a library for doing approximate and phonetic matching of strings".into());
    p.home_page = Some("https://github.com/jamesturk/jellyfish".into());
    let f = analyze_package(&t, &p, &Options::default());
    let triggers: BTreeSet<&str> = f.iter().map(|f| f.trigger.as_str()).collect();
    for want in ["import-imitation", "copied-metadata", "obfuscated-exec"] {
        assert!(triggers.contains(want), "{want}: {triggers:?}");
    }
    let imit = f.iter().find(|f| f.trigger == "import-imitation").unwrap();
    assert!(
        imit.mitre.iter().any(|m| m.id == "T1036.005"),
        "{:?}",
        imit.mitre
    );
}
