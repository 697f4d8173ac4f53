//! Policy evaluation time: 1,000 rules of mixed gates on an image with 150 packages and 50,000
//! files (docs/benchmarks.md, "Scan policies"). Run: `cargo bench -p pyward-policy --bench policy_eval`.
//! The image is read once; only `evaluate` is timed (best and median of 15 runs).

use pyward_inventory::{inventory, DockerfileMode, Options};
use pyward_policy::{DockerfileInput, Input};
use pyward_testkit::demo::{installed_layer, SITE_PACKAGES};
use pyward_testkit::image::{Compression, ImageBuilder, Layer};
use pyward_testkit::wheel::WheelSpec;
use std::time::Instant;

fn policy_text(rules: usize) -> String {
    let mut s = String::from("id: bench\nrules:\n");
    for i in 0..rules {
        let r = match i % 10 {
            0..=2 => format!("{{id: r{i}, gate: packages, trigger: blacklist, action: STOP, params: {{name: evil-pkg-{i}}}}}"),
            3..=4 => format!("{{id: r{i}, gate: files, trigger: name_match, action: STOP, params: {{regex: 'evil{i}/payload_{i}\\.py$'}}}}"),
            5 => format!("{{id: r{i}, gate: dockerfile, trigger: instruction, action: STOP, params: {{instruction: RUN, check: like, value: '.*evil-{i}.*'}}}}"),
            6 => format!("{{id: r{i}, gate: packages, trigger: required_package, action: WARN, params: {{name: pkg{}, version: '1.0', version_match_type: minimum}}}}", i % 150),
            7 => format!("{{id: r{i}, gate: metadata, trigger: attribute, action: WARN, params: {{attribute: layer_count, check: '>', value: '{}'}}}}", 100 + i),
            8 => format!("{{id: r{i}, gate: dockerfile, trigger: exposed_ports, action: WARN, params: {{ports: '{}', type: blacklist}}}}", 1000 + i),
            _ => match i % 4 {
                0 => format!("{{id: r{i}, gate: files, trigger: suid_or_guid_set, action: WARN}}"),
                1 => format!("{{id: r{i}, gate: dockerfile, trigger: effective_user, action: WARN, params: {{users: [root], type: denylist}}}}"),
                2 => format!("{{id: r{i}, gate: typosquat, trigger: name, action: WARN, params: {{min_confidence: medium}}}}"),
                _ => format!("{{id: r{i}, gate: malicious, trigger: known_malicious, action: STOP}}"),
            },
        };
        s.push_str("  - ");
        s.push_str(&r);
        s.push('\n');
    }
    s
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("big.tar");
    let wheels: Vec<WheelSpec> = (0..150)
        .map(|i| {
            WheelSpec::new(&format!("pkg{i}"), "1.2.3")
                .file(&format!("pkg{i}/__init__.py"), "x = 1\n")
        })
        .collect();
    let refs: Vec<&WheelSpec> = wheels.iter().collect();
    let per_pkg = 5; // files of each installed package (module, METADATA, WHEEL, INSTALLER, RECORD)
    let mut files = Layer::new()
        .compression(Compression::Gzip)
        .created_by("RUN /bin/sh -c make install");
    for i in 0..(50_000 - 150 * per_pkg) {
        files = files.file(&format!("/usr/share/data/d{}/f{i}.txt", i % 100), "x");
    }
    ImageBuilder::new()
        .tag("bench/app:1")
        .layer(files)
        .layer(
            installed_layer(SITE_PACKAGES, &refs)
                .created_by("RUN /bin/sh -c pip install -r requirements.txt # buildkit"),
        )
        .write_docker_archive(&img)
        .expect("write image");
    let inv = inventory(&img, &Options::default()).expect("inventory");
    let nfiles = inv.tree.entries().iter().filter(|e| e.is_file()).count();
    let npkgs = inv
        .packages
        .iter()
        .filter(|p| p.source.is_installed())
        .count();
    let bundle = pyward_policy::load_str(&policy_text(1000), "bench.yaml", false)
        .expect("policy")
        .bundle;
    let dockerfiles: Vec<DockerfileInput> = inv
        .dockerfiles
        .iter()
        .map(|d| DockerfileInput {
            path: d.path.clone(),
            actual: d.mode == DockerfileMode::Actual,
            text: inv
                .image
                .as_ref()
                .map(|m| m.summary.dockerfile.join("\n"))
                .unwrap_or_default(),
        })
        .collect();
    let input = Input {
        image_refs: vec!["bench/app:1".into()],
        image_digest: None,
        image_id: None,
        packages: &inv.packages,
        tree: inv.tree.as_ref(),
        removed_files: &[],
        removed_packages: &[],
        dockerfiles,
        image: inv.image.as_ref(),
        findings: &[],
        baseline: None,
    };
    let mut times = Vec::new();
    let mut fired = 0;
    for _ in 0..15 {
        let t = Instant::now();
        let e = pyward_policy::evaluate(
            std::slice::from_ref(&bundle),
            &input,
            time::OffsetDateTime::now_utc(),
        );
        times.push(t.elapsed());
        fired = e.findings.len();
    }
    times.sort();
    println!(
        "policy_eval: {} rules, {npkgs} packages, {nfiles} files: best {:.1} ms, median {:.1} ms ({fired} findings)",
        bundle.rule_sets[0].rules.len(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3
    );
}
