//! The done-when scenarios: the jeIlyfish policy (YAML and Anchore JSON twin), the incident-1
//! demo image, the default policy, the clean image, and an allowlist item.

mod support;

use pyward_core::Action;
use pyward_testkit::demo::{clean_image, incident1_image, installed_layer, SITE_PACKAGES};
use pyward_testkit::image::{Compression, ImageBuilder, Layer};
use pyward_testkit::wheel::incident1_wheels;
use support::*;

/// An image built by `RUN pip install jeIlyfish` (BuildKit history).
fn jeilyfish_image(dir: &std::path::Path) -> std::path::PathBuf {
    let (jeilyfish, _) = incident1_wheels();
    let path = dir.join("jeilyfish.tar");
    ImageBuilder::new()
        .tag("example.com/team/app:1.0")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by("/bin/sh -c #(nop) ADD file:abc in / ")
                .file("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
        )
        .empty_step("/bin/sh -c #(nop)  CMD [\"bash\"]")
        .layer(
            installed_layer(SITE_PACKAGES, &[&jeilyfish])
                .created_by("RUN /bin/sh -c pip install jeIlyfish # buildkit"),
        )
        .write_docker_archive(&path)
        .unwrap();
    path
}

fn three() -> Vec<(String, String)> {
    vec![
        ("dockerfile".into(), "instruction".into()),
        ("files".into(), "name_match".into()),
        ("packages".into(), "blacklist".into()),
    ]
}

#[test]
fn jeilyfish_policy_yaml_and_anchore_twin_stop_with_the_three_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let image = jeilyfish_image(dir.path());
    let yaml = scan(&image, &[shipped("jeilyfish.yaml")], Scan::default());
    let json = scan(
        &image,
        &[shipped("jeilyfish-anchore.json")],
        Scan::default(),
    );
    for e in [&yaml, &json] {
        assert_eq!(e.final_action, Action::Stop);
        assert_eq!(fired(e), three());
        let f = with_gate(e, "files")[0];
        assert_eq!(
            f.path.as_deref(),
            Some(format!("{SITE_PACKAGES}/jeIlyfish/_jellyfish.py").as_str())
        );
        assert!(f.layer.is_some(), "file findings carry their layer");
        let p = with_gate(e, "packages")[0];
        assert_eq!(p.message, "Package is blacklisted: jeIlyfish");
    }
    // Same rules, same messages: the same Anchore trigger ids in both formats.
    let ids = |e: &pyward_policy::Evaluation| {
        let mut v: Vec<String> = e
            .findings
            .iter()
            .filter_map(|f| f.policy.as_ref())
            .map(|p| p.trigger_id.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&yaml), ids(&json));
    let pkg = with_gate(&yaml, "packages")[0].policy.clone().unwrap();
    assert_eq!(pkg.policy_id, "jeilyfish-policy");
    assert_eq!(pkg.rule_id, "r1");
    assert_eq!(
        pkg.trigger_id,
        pyward_policy::trigger_id("packages", "blacklist", "Package is blacklisted: jeIlyfish")
    );
    let df = with_gate(&json, "dockerfile")[0];
    assert!(
        df.message.starts_with(
            "Dockerfile directive 'RUN' check 'like' matched against '.*jeIlyfish.*' for line '"
        ),
        "{}",
        df.message
    );
}

#[test]
fn incident1_demo_stops_on_packages_and_files_but_not_the_dockerfile_rule() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&image).unwrap();
    let e = scan(&image, &[shipped("jeilyfish.yaml")], Scan::default());
    assert_eq!(e.final_action, Action::Stop);
    assert_eq!(
        fired(&e),
        vec![
            ("files".to_string(), "name_match".to_string()),
            ("packages".to_string(), "blacklist".to_string())
        ]
    );
    // `pip install python3-dateutil` never names jeIlyfish: the write-up's rule misses it, and
    // so does the write-up's whole policy miss python3-dateutil itself.
    assert!(!e
        .findings
        .iter()
        .any(|f| f.message.contains("python3-dateutil") && f.policy.is_some()));

    let d = scan(&image, &[pyward_policy::default_policy()], Scan::default());
    assert_eq!(d.final_action, Action::Stop);
    let malicious: Vec<_> = with_gate(&d, "malicious");
    assert!(
        malicious.iter().any(|f| f
            .package
            .as_ref()
            .is_some_and(|p| p.name == "python3-dateutil")
            && f.action == Action::Stop),
        "{malicious:#?}"
    );
    assert!(malicious
        .iter()
        .all(|f| f.policy.as_ref().unwrap().policy_id == "pyward-default"));
}

#[test]
fn clean_image_is_go() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("clean.tar");
    clean_image().write_docker_archive(&image).unwrap();
    for b in [
        pyward_policy::default_policy(),
        shipped("jeilyfish.yaml"),
        shipped("jeilyfish-anchore.json"),
    ] {
        let e = scan(&image, &[b], Scan::default());
        assert_eq!(e.final_action, Action::Go, "{:#?}", e.findings);
        assert!(fired(&e).is_empty());
    }
}

#[test]
fn an_allowlist_item_removes_exactly_one_trigger_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let image = jeilyfish_image(dir.path());
    let base = scan(&image, &[shipped("jeilyfish.yaml")], Scan::default());
    let file_tid = with_gate(&base, "files")[0]
        .policy
        .clone()
        .unwrap()
        .trigger_id;
    let text = std::fs::read_to_string(repo_root().join("policies/jeilyfish.yaml")).unwrap();
    let text = format!(
        "{text}\nallowlist:\n  - id: accept-file\n    gate: files\n    trigger_id: {file_tid}\n    expires_on: 2099-01-01T00:00:00Z\n"
    );
    let e = scan(&image, &[policy(&text)], Scan::default());
    assert_eq!(e.final_action, Action::Stop);
    assert_eq!(
        fired(&e),
        vec![
            ("dockerfile".to_string(), "instruction".to_string()),
            ("packages".to_string(), "blacklist".to_string())
        ]
    );
    let f = with_gate(&e, "files")[0];
    assert_eq!(
        f.policy.as_ref().unwrap().allowlisted_by.as_deref(),
        Some("allowlist jeilyfish-policy-allowlist item accept-file")
    );
    assert_eq!(f.effective_action(), Action::Go);

    // Wildcards and `regexp:` forms; an expired item no longer applies.
    for (tid, expires, hits) in [
        ("\"*\"", "2099-01-01", 0),
        ("regexp:[0-9a-f]{32}", "2099-01-01", 0),
        ("\"*\"", "2001-01-01", 1),
    ] {
        let text = format!(
            "{}\nallowlist:\n  - id: all-packages\n    gate: packages\n    trigger_id: {tid}\n    expires_on: {expires}\n",
            std::fs::read_to_string(repo_root().join("policies/jeilyfish.yaml")).unwrap()
        );
        let loaded = pyward_policy::load_str(&text, "t.yaml", false).unwrap();
        let e = scan(&image, &[loaded.bundle], Scan::default());
        assert_eq!(
            fired(&e).iter().filter(|(g, _)| g == "packages").count(),
            hits,
            "{tid} {expires}"
        );
        if expires.starts_with("2001") {
            assert!(loaded
                .warnings
                .iter()
                .any(|w| w.message.contains("expired")));
            assert!(e.warnings.iter().any(|w| w.message.contains("expired")));
        }
    }
}
