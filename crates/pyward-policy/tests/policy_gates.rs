//! Every gate and trigger, on real images and folders built here.

mod support;

use pyward_core::{Action, Finding, Severity};
use pyward_testkit::demo::{installed_layer, SITE_PACKAGES};
use pyward_testkit::image::{Compression, ImageBuilder, Layer};
use pyward_testkit::wheel::WheelSpec;
use support::*;

fn rule(gate: &str, trigger: &str, params: &str) -> pyward_policy::Bundle {
    policy(&format!("id: t\nrules:\n  - id: r\n    gate: {gate}\n    trigger: {trigger}\n    action: STOP\n    params: {{{params}}}\n"))
}

fn fires(e: &pyward_policy::Evaluation) -> Vec<String> {
    e.findings
        .iter()
        .filter(|f| f.policy.is_some() && f.effective_action() == Action::Stop)
        .map(|f| f.message.clone())
        .collect()
}

/// A small image: os layer, site-packages with `six` and `Requests`, a setuid binary, a key.
fn image(
    dir: &std::path::Path,
    extra: impl FnOnce(ImageBuilder) -> ImageBuilder,
) -> std::path::PathBuf {
    let six = WheelSpec::new("six", "1.16.0").file("six.py", "x = 1\n");
    let requests = WheelSpec::new("Requests", "2.31.0").file("requests/__init__.py", "y = 2\n");
    let b = ImageBuilder::new()
        .tag("registry.example.com/team/app:1.0")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by("/bin/sh -c #(nop) ADD file:abc in / ")
                .file(
                    "/etc/os-release",
                    "ID=debian\nVERSION_ID=\"12\"\nID_LIKE=\"\"\n",
                )
                .file_mode("/usr/bin/su", "inert", 0o4755)
                .file("/etc/motd", "hello\n"),
        )
        .layer(
            installed_layer(SITE_PACKAGES, &[&six, &requests])
                .created_by("RUN /bin/sh -c pip install six Requests # buildkit"),
        );
    let path = dir.join("img.tar");
    extra(b).write_docker_archive(&path).unwrap();
    path
}

#[test]
fn packages_denylist_is_pep503_and_notes_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let e = scan(
        &img,
        &[rule("packages", "denylist", "name: requests")],
        Scan::default(),
    );
    let msgs = fires(&e);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with("Package is blacklisted: Requests (the target spells it `Requests`"),
        "{}",
        msgs[0]
    );
    let e = scan(
        &img,
        &[rule(
            "packages",
            "blacklist",
            "name: six, version: '1.16.0'",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e), vec!["Package is blacklisted: six-1.16.0"]);
    let e = scan(
        &img,
        &[rule("packages", "blacklist", "name: six, version: '2.0'")],
        Scan::default(),
    );
    assert!(fires(&e).is_empty());
}

#[test]
fn packages_required_package() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let run = |p: &str| {
        fires(&scan(
            &img,
            &[rule("packages", "required_package", p)],
            Scan::default(),
        ))
    };
    assert_eq!(
        run("name: flask"),
        vec!["Required input package (flask) is not present in container image"]
    );
    assert!(run("name: six").is_empty());
    assert_eq!(run("name: six, version: '1.17'"), vec!["Required input package (six) is present (1.16.0), but not at the version specified in policy (six)"]);
    assert!(
        run("name: six, version: '1.9', version_match_type: minimum").is_empty(),
        "1.16 >= 1.9 as PEP 440 versions"
    );
    assert_eq!(
        run("name: six, version: '1.20', version_match_type: minimum").len(),
        1
    );
}

#[test]
fn packages_verify_finds_files_changed_after_install() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| {
        b.layer(
            Layer::new()
                .created_by("RUN /bin/sh -c echo evil >> six.py")
                .file(&format!("{SITE_PACKAGES}/six.py"), "x = 1\nimport os\n"),
        )
    });
    let e = scan(&img, &[rule("packages", "verify", "")], Scan::default());
    assert_eq!(
        fires(&e),
        vec![format!("VERIFY check against package db for package 'six' failed on entry '{SITE_PACKAGES}/six.py' with status: 'changed'")]
    );
    let f = e.findings.iter().find(|f| f.policy.is_some()).unwrap();
    assert_eq!(
        f.layer.as_ref().map(|l| l.index),
        Some(2),
        "the layer that changed it"
    );
    let e = scan(
        &img,
        &[rule("packages", "verify", "only_packages: requests")],
        Scan::default(),
    );
    assert!(fires(&e).is_empty());
}

#[test]
fn dockerfile_triggers_actual_and_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| {
        b.empty_step("/bin/sh -c #(nop)  EXPOSE 8888/tcp 22")
            .expose("8888/tcp")
    });
    let guessed = |b| scan(&img, &[b], Scan::default());
    let actual = |b, df: &str| {
        scan(
            &img,
            &[b],
            Scan {
                dockerfile: Some(df),
                ..Default::default()
            },
        )
    };
    // instruction
    assert_eq!(
        fires(&guessed(rule(
            "dockerfile",
            "instruction",
            "instruction: RUN, check: like, value: '.*pip install six.*'"
        )))
        .len(),
        1
    );
    assert!(
        fires(&guessed(rule(
            "dockerfile",
            "instruction",
            "instruction: RUN, check: like, value: 'pip'"
        )))
        .is_empty(),
        "re.match is anchored"
    );
    assert!(fires(&guessed(rule(
        "dockerfile",
        "instruction",
        "instruction: RUN, check: like, value: '.*six.*', actual_dockerfile_only: true"
    )))
    .is_empty());
    let df = "FROM python:3.12\n# comment\nRUN pip install \\\n  six\nUSER app\n";
    assert_eq!(
        fires(&actual(rule("dockerfile", "instruction", "instruction: RUN, check: like, value: '.*six.*', actual_dockerfile_only: true"), df)),
        vec!["Dockerfile directive 'RUN' check 'like' matched against '.*six.*' for line 'pip install six'"]
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: FROM, check: '=', value: 'python:3.12'"
            ),
            df
        ))
        .len(),
        1
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: FROM, check: in, value: 'alpine, python:3.12'"
            ),
            df
        ))
        .len(),
        1
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: FROM, check: not_in, value: 'alpine'"
            ),
            df
        ))
        .len(),
        1
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: FROM, check: '!=', value: 'alpine'"
            ),
            df
        ))
        .len(),
        1
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: RUN, check: not_like, value: '.*curl.*'"
            ),
            df
        ))
        .len(),
        1
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: HEALTHCHECK, check: not_exists"
            ),
            df
        )),
        vec!["Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check"]
    );
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "instruction",
                "instruction: USER, check: exists"
            ),
            df
        ))
        .len(),
        1
    );
    // effective_user: guessed history has no USER → root; the actual Dockerfile says app.
    assert_eq!(
        fires(&guessed(rule(
            "dockerfile",
            "effective_user",
            "users: [root], type: denylist"
        ))),
        vec!["User root found as effective user, which is explicity not allowed list"]
    );
    assert!(fires(&actual(
        rule(
            "dockerfile",
            "effective_user",
            "users: [root], type: blacklist"
        ),
        df
    ))
    .is_empty());
    assert_eq!(
        fires(&actual(
            rule(
                "dockerfile",
                "effective_user",
                "users: 'web,api', type: whitelist"
            ),
            df
        )),
        vec!["User app found as effective user, which is not on the allowed list"]
    );
    // exposed_ports
    assert_eq!(
        fires(&guessed(rule(
            "dockerfile",
            "exposed_ports",
            "ports: '22', type: blacklist"
        ))),
        vec!["Dockerfile exposes port (22) which is in policy file DENIEDPORTS list"]
    );
    assert_eq!(
        fires(&guessed(rule(
            "dockerfile",
            "exposed_ports",
            "ports: '8888', type: allowlist"
        ))),
        vec!["Dockerfile exposes port (22) which is not in policy file ALLOWEDPORTS list"]
    );
    assert!(fires(&guessed(rule(
        "dockerfile",
        "exposed_ports",
        "ports: '22', type: blacklist, actual_dockerfile_only: true"
    )))
    .is_empty());
    // no_dockerfile_provided
    assert_eq!(
        fires(&guessed(rule("dockerfile", "no_dockerfile_provided", ""))),
        vec!["Image was not analyzed with an actual Dockerfile"]
    );
    assert!(fires(&actual(
        rule("dockerfile", "no_dockerfile_provided", ""),
        df
    ))
    .is_empty());
}

#[test]
fn dockerfile_found_in_a_folder_is_actual() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM python:3.12\nRUN pip install jeIlyfish\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "jeIlyfish==0.5.1\n").unwrap();
    let e = scan(
        dir.path(),
        &[
            shipped("jeilyfish.yaml"),
            rule("dockerfile", "no_dockerfile_provided", ""),
        ],
        Scan::default(),
    );
    let got = fired(&e);
    assert!(
        got.contains(&("dockerfile".into(), "instruction".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("packages".into(), "blacklist".into())),
        "declared packages count when none is installed"
    );
    assert!(!got.contains(&("dockerfile".into(), "no_dockerfile_provided".into())));
}

#[test]
fn files_name_suid_attribute_content() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let e = scan(
        &img,
        &[rule("files", "name_match", r"regex: 'bin/su$'")],
        Scan::default(),
    );
    assert_eq!(
        fires(&e),
        vec![
            "Application of regex matched file found in container: file=/usr/bin/su regexp=bin/su$"
        ]
    );
    let e = scan(&img, &[policy("id: t\nfile_regex: start\nrules:\n  - {id: r, gate: files, trigger: name_match, action: STOP, params: {regex: 'bin/su$'}}\n")], Scan::default());
    assert!(
        fires(&e).is_empty(),
        "Anchore's anchored semantics on request"
    );
    let e = scan(
        &img,
        &[rule("files", "suid_or_guid_set", "")],
        Scan::default(),
    );
    assert_eq!(
        fires(&e),
        vec!["SUID or SGID found set on file /usr/bin/su. Mode: 0o4755"]
    );
    let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; // sha256("hello\n")
    let e = scan(&img, &[rule("files", "attribute_match", &format!("filename: /etc/motd, checksum_algorithm: sha256, checksum: {sha}, checksum_match: equals"))], Scan::default());
    assert_eq!(
        fires(&e),
        vec![format!(
            "filename=/etc/motd and checksum={sha} op=equals specified_checksum={sha}"
        )]
    );
    let e = scan(
        &img,
        &[rule(
            "files",
            "attribute_match",
            &format!("filename: /etc/motd, checksum: {sha}, checksum_match: not_equals"),
        )],
        Scan::default(),
    );
    assert!(fires(&e).is_empty());
    let e = scan(
        &img,
        &[rule(
            "files",
            "attribute_match",
            "filename: /usr/bin/su, mode: '04755', mode_op: equals",
        )],
        Scan::default(),
    );
    assert_eq!(
        fires(&e),
        vec!["filename=/usr/bin/su and mode=0o4755 op=equals specified_mode=0o4755"]
    );
    let e = scan(
        &img,
        &[rule(
            "files",
            "attribute_match",
            "filename: /etc/motd, size: 100, size_op: '<'",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e).len(), 1);
    let e = scan(
        &img,
        &[rule(
            "files",
            "attribute_match",
            "filename: /nope, skip_missing: false",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e), vec!["filename=/nope and skip_missing=False"]);
    let e = scan(&img, &[policy("id: t\ncontent_search:\n  GREETING: '.*hello'\nrules:\n  - {id: r, gate: files, trigger: content_regex_match, action: STOP, params: {regex_name: GREETING}}\n")], Scan::default());
    assert_eq!(fires(&e), vec!["File content analyzer found regexp match in container: file=/etc/motd regexp=GREETING=.*hello"]);
}

/// A content regex the `regex` crate cannot take (a backreference, run by fancy-regex) makes
/// the one-pass superset set fail to build; every pattern must still be checked.
#[test]
fn content_regexes_outside_the_fast_set_still_match() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| {
        b.layer(
            Layer::new()
                .file("/etc/motd", "hello there\n")
                .file("/etc/echo", "say abcabc twice\n"),
        )
    });
    let e = scan(&img, &[policy("id: t\ncontent_search:\n  GREETING: '.*hello'\n  TWICE: '.*(abc)\\1'\nrules:\n  - {id: r, gate: files, trigger: content_regex_match, action: STOP}\n")], Scan::default());
    let mut got = fires(&e);
    got.sort();
    assert_eq!(
        got,
        vec![
            "File content analyzer found regexp match in container: file=/etc/echo regexp=TWICE=.*(abc)\\1",
            "File content analyzer found regexp match in container: file=/etc/motd regexp=GREETING=.*hello",
        ]
    );
}

#[test]
fn secret_scans_find_private_keys_in_images_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    // Inert, made-up key material: the markers are what the default regexes look for.
    let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nnot-a-real-key\n-----END PGP PRIVATE KEY BLOCK-----\n";
    let ssh =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";
    let img = image(dir.path(), |b| {
        b.layer(
            Layer::new()
                .file("/root/.ssh/id_ed25519", ssh)
                .file("/root/.gnupg/secret.asc", pgp),
        )
    });
    let e = scan(
        &img,
        &[rule("secret_scans", "content_regex_checks", "")],
        Scan::default(),
    );
    let msgs = fires(&e);
    assert!(
        msgs.iter().any(|m| m
            .contains("file=/root/.ssh/id_ed25519 regexp=PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("file=/root/.gnupg/secret.asc regexp=PGP_PRIV_KEY=")),
        "{msgs:?}"
    );
    let e = scan(
        &img,
        &[rule(
            "secret_scans",
            "content_regex_checks",
            "content_regex_name: PGP_PRIV_KEY, filename_regex: '.*gnupg'",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e).len(), 1);
    let e = scan(
        &img,
        &[rule(
            "secret_scans",
            "content_regex_checks",
            "content_regex_name: AWS_ACCESS_KEY, match_type: notfound",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e), vec!["Secret content search analyzer did not find regexp match in container: filename_regex=* content_regex_name=AWS_ACCESS_KEY"]);
    // The default policy warns (WARN, not STOP).
    let d = scan(&img, &[pyward_policy::default_policy()], Scan::default());
    assert!(d
        .findings
        .iter()
        .any(|f| f.gate == "secret_scans" && f.action == Action::Warn));
    // A folder: read from disk; an AWS key with the look-behind regex.
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("config"),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    )
    .unwrap();
    let e = scan(
        folder.path(),
        &[rule(
            "secret_scans",
            "content_regex_checks",
            "content_regex_name: AWS_ACCESS_KEY",
        )],
        Scan::default(),
    );
    assert_eq!(fires(&e).len(), 1, "{:?}", e.findings);
}

#[test]
fn metadata_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let run = |p: &str| {
        fires(&scan(
            &img,
            &[rule("metadata", "attribute", p)],
            Scan::default(),
        ))
    };
    assert_eq!(run("attribute: layer_count, check: '=', value: '2'"), vec!["Attribute check for attribute: 'layer_count' check: '=' check_value: '2' matched image value: '2'"]);
    assert_eq!(run("attribute: distro, check: '=', value: debian").len(), 1);
    assert_eq!(
        run("attribute: distro_version, check: in, value: '11,12'").len(),
        1
    );
    assert_eq!(
        run("attribute: architecture, check: '=', value: amd64").len(),
        1
    );
    assert_eq!(run("attribute: user, check: '=', value: root").len(), 1);
    assert_eq!(run("attribute: size, check: '<', value: 1MB").len(), 1);
    assert!(run("attribute: size, check: '>', value: 1GB").is_empty());
    assert_eq!(
        run("attribute: distro, check: like, value: 'deb.*'").len(),
        1
    );
}

fn analyzer(rule_id: &str, gate: &str, evidence: &[(&str, &str)]) -> Finding {
    let mut f = Finding::new(
        rule_id,
        gate,
        "x",
        Action::Warn,
        Severity::Medium,
        format!("{rule_id} fired"),
    );
    for (k, v) in evidence {
        f = f.with_evidence(*k, *v);
    }
    f
}

#[test]
fn pyward_gates_decide_on_analyzer_findings() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let findings = vec![
        analyzer("names.typosquat", "names", &[("confidence", "medium")]),
        analyzer("heuristics.exec-base64", "heuristics", &[("score", "0.9")]),
        analyzer("heuristics.low", "heuristics", &[("score", "0.1")]),
        analyzer("intel.known-malicious", "intel", &[]),
    ];
    let with = |b| {
        scan(
            &img,
            &[b],
            Scan {
                extra_findings: findings.clone(),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        fires(&with(rule("typosquat", "name", "min_confidence: medium"))),
        vec!["names.typosquat fired"]
    );
    assert!(fires(&with(rule("typosquat", "name", "min_confidence: high"))).is_empty());
    assert_eq!(
        fires(&with(rule("heuristics", "score", "min_score: 0.5"))),
        vec!["heuristics.exec-base64 fired"]
    );
    assert_eq!(
        fires(&with(rule(
            "heuristics",
            "score",
            "rule_ids: [heuristics.low]"
        ))),
        vec!["heuristics.low fired"]
    );
    let e = with(rule("malicious", "known_malicious", ""));
    assert_eq!(fires(&e), vec!["intel.known-malicious fired"]);
    // Findings no rule decided stay in the report, with action GO.
    let undecided: Vec<_> = e.findings.iter().filter(|f| f.policy.is_none()).collect();
    assert_eq!(undecided.len(), 3);
    assert!(undecided.iter().all(|f| f.action == Action::Go));
    // A policy without the intel gates does not stop on intel findings.
    assert_eq!(
        with(rule("always", "always", ""))
            .findings
            .iter()
            .filter(|f| f.rule_id == "intel.known-malicious")
            .map(|f| f.action)
            .collect::<Vec<_>>(),
        vec![Action::Go]
    );
}

#[test]
fn drift_against_a_baseline_report_or_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let report = br#"{"packages":[{"name":"six","version":"1.15.0","source":{"type":"installed","kind":"dist-info"}},
        {"name":"urllib3","version":"2.0","source":{"type":"installed","kind":"dist-info"}}]}"#;
    let base = pyward_policy::Baseline::from_json(report, "base.json").unwrap();
    let run = |t: &str| {
        fires(&scan(
            &img,
            &[rule("drift", t, "")],
            Scan {
                baseline: Some(base.clone()),
                ..Default::default()
            },
        ))
    };
    assert_eq!(
        run("packages_added"),
        vec!["Package added since the baseline: Requests-2.31.0"]
    );
    assert_eq!(
        run("packages_removed"),
        vec!["Package removed since the baseline: urllib3-2.0"]
    );
    assert_eq!(
        run("packages_modified"),
        vec!["Package version changed since the baseline: six 1.15.0 -> 1.16.0"]
    );
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"six","version":"1.16.0","purl":"pkg:pypi/six@1.16.0"},{"type":"library","name":"requests","version":"2.31.0","purl":"pkg:pypi/requests@2.31.0"}]}"#;
    let base = pyward_policy::Baseline::from_json(sbom, "sbom.json").unwrap();
    let e = scan(
        &img,
        &[
            rule("drift", "packages_added", ""),
            rule("drift", "packages_modified", ""),
        ],
        Scan {
            baseline: Some(base),
            ..Default::default()
        },
    );
    assert!(fires(&e).is_empty());
    assert!(pyward_policy::Baseline::from_json(b"{}", "x.json")
        .unwrap_err()
        .contains("neither"));
    assert!(pyward_policy::Baseline::from_json(b"nope", "x.json")
        .unwrap_err()
        .contains("not JSON"));
}

#[test]
fn layers_all_reports_what_a_later_layer_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (jeilyfish, _) = pyward_testkit::wheel::incident1_wheels();
    let di = jeilyfish.dist_info();
    let img = image(dir.path(), |b| {
        b.layer(
            installed_layer(SITE_PACKAGES, &[&jeilyfish])
                .created_by("RUN /bin/sh -c pip install -r /tmp/requirements.txt"),
        )
        .layer(
            Layer::new()
                .created_by("RUN /bin/sh -c pip uninstall -y jeIlyfish")
                .opaque(&format!("{SITE_PACKAGES}/jeIlyfish"))
                .whiteout(&format!("{SITE_PACKAGES}/jeIlyfish"))
                .whiteout(&format!("{SITE_PACKAGES}/{di}")),
        )
    });
    let bundle = || {
        policy("id: t\nrules:\n  - {id: p, gate: packages, trigger: blacklist, action: STOP, params: {name: jeilyfish}}\n  - {id: f, gate: files, trigger: name_match, action: STOP, params: {regex: 'jeIlyfish/_jellyfish\\.py'}}\n")
    };
    let squashed = scan(&img, &[bundle()], Scan::default());
    assert!(
        fires(&squashed).iter().all(|m| !m.contains("jeIlyfish")),
        "{:?}",
        fires(&squashed)
    );
    let all = scan(
        &img,
        &[bundle()],
        Scan {
            all_layers: true,
            ..Default::default()
        },
    );
    let got = fired(&all);
    assert!(
        got.contains(&("files".into(), "name_match".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("packages".into(), "blacklist".into())),
        "{got:?}"
    );
    let f = with_gate(&all, "files")[0];
    assert_eq!(
        f.layer.as_ref().map(|l| l.index),
        Some(2),
        "the layer that added it"
    );
    assert!(f.message.contains("deleted by a later layer"));
    let p = with_gate(&all, "packages")[0];
    assert!(
        p.message.contains("deleted by a later layer"),
        "{}",
        p.message
    );
    assert_eq!(
        p.package.as_ref().map(|p| p.name.as_str()),
        Some("jeIlyfish")
    );
}

#[test]
fn mappings_and_image_lists() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), |b| b);
    let bundle = |extra: &str| {
        policy(&format!(
            "id: b\nrule_sets:\n  - id: strict\n    rules: [{{id: a, gate: always, trigger: always, action: STOP}}]\n  - id: lax\n    rules: [{{id: w, gate: always, trigger: always, action: WARN}}]\n{extra}"
        ))
    };
    let m = "mappings:\n  - {id: m1, registry: registry.example.com, repository: 'team/*', image: {type: tag, value: '1.*'}, rule_set_ids: [lax]}\n  - {id: m2, registry: '*', repository: '*', image: {type: tag, value: '*'}, rule_set_ids: [strict]}\n";
    let e = scan(&img, &[bundle(m)], Scan::default());
    assert_eq!(e.final_action, Action::Warn, "first matching mapping wins");
    assert_eq!(e.bundles[0].mapping.as_deref(), Some("m1"));
    let e = scan(
        &img,
        &[bundle(m)],
        Scan {
            image_ref: Some("docker.io/library/python:3.12".into()),
            ..Default::default()
        },
    );
    assert_eq!(e.final_action, Action::Stop);
    let none = "mappings:\n  - {id: only, registry: nowhere.example, repository: '*', rule_set_ids: [lax]}\n";
    let e = scan(&img, &[bundle(none)], Scan::default());
    assert_eq!(
        e.final_action,
        Action::Stop,
        "no mapping: the evaluation fails, as Anchore's"
    );
    let allowed = "allowlisted_images:\n  - {name: ours, registry: registry.example.com, repository: 'regexp:team/.*', image: {type: tag, value: '*'}}\n";
    let e = scan(&img, &[bundle(allowed)], Scan::default());
    assert_eq!(e.final_action, Action::Go);
    assert!(e
        .findings
        .iter()
        .all(|f| f.policy.as_ref().unwrap().allowlisted_by.as_deref()
            == Some("allowlisted image ours")));
    let both = format!(
        "{allowed}denylisted_images:\n  - {{name: bad, registry: '*', repository: 'team/app'}}\n"
    );
    let e = scan(&img, &[bundle(&both)], Scan::default());
    assert_eq!(e.final_action, Action::Stop, "denylist beats allowlist");
    assert_eq!(
        e.bundles[0].matched_denylisted_image.as_deref(),
        Some("bad")
    );
}

#[test]
fn image_refs_parse_like_docker() {
    let r = pyward_policy::parse_image_ref("python:3.12");
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
        ("docker.io", "library/python", "3.12")
    );
    let r = pyward_policy::parse_image_ref("localhost:5000/a/b");
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
        ("localhost:5000", "a/b", "latest")
    );
    let r = pyward_policy::parse_image_ref("dockerhub/x/y:1");
    assert_eq!(
        (r.registry.as_str(), r.repository.as_str()),
        ("docker.io", "x/y")
    );
}
