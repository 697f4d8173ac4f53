//! Ransomware detector: the incident-2 script and its variants are detected within 3 files;
//! benign bulk workloads, replayed as the syscalls those tools really make, are not.

mod common;

use common::*;
use pyward_detect::{config, DetectConfig};
use pyward_rules::Priority;

const ENC: &str = "Ransomware-like File Encryption";

/// Jupyter server → kernel → `sh -c` → `python3 encrypt.py`, as in incident 2.
fn jupyter(sim: &mut Sim) -> u64 {
    sim.add_proc(
        200,
        1,
        "jupyter-noteboo",
        "/usr/bin/python3.11",
        &["/usr/local/bin/jupyter-notebook"],
        "/home/jovyan",
    );
    sim.add_proc(
        300,
        200,
        "python3",
        "/usr/bin/python3.11",
        &["-m", "ipykernel_launcher", "-f", "/tmp/k.json"],
        "/home/jovyan",
    );
    sim.spawn(
        400,
        300,
        "sh",
        "/usr/bin/dash",
        &["-c", "python3 encrypt.py"],
        "/home/jovyan",
    );
    sim.spawn(
        401,
        400,
        "python3",
        "/usr/bin/python3.11",
        &["encrypt.py"],
        "/home/jovyan",
    );
    401
}

/// Encrypt `files` the way the incident-2 script does; returns how many originals were
/// destroyed when the first encryption alert fired (None if it never did).
fn encrypt_and_delete(sim: &mut Sim, pid: u64, files: &[String], key: &[u8]) -> Option<usize> {
    let mut lost_at_alert = None;
    for (i, f) in files.iter().enumerate() {
        let plain = text_bytes(i);
        let fd = sim.open(pid, f, "O_RDONLY|O_CLOEXEC");
        sim.read(pid, fd, f, &plain);
        let out = format!("{f}.enc");
        let fd2 = sim.open(pid, &out, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        let mut d = sim.write(pid, fd2, &out, &xor(&plain, key));
        d.extend(sim.unlink(pid, f));
        if lost_at_alert.is_none() && d.iter().any(|d| d.rule == ENC) {
            lost_at_alert = Some(i + 1);
        }
    }
    lost_at_alert
}

#[test]
fn incident2_script_detected_within_three_files_and_self_deletion() {
    let mut sim = Sim::default();
    let files = sim.tree_of_docs("/home/jovyan/work", 500);
    let pid = jupyter(&mut sim);
    let lost = encrypt_and_delete(&mut sim, pid, &files, b"k3y!secret");
    assert!(
        matches!(lost, Some(n) if n <= 3),
        "files lost before detection: {lost:?}"
    );
    sim.unlink(pid, "encrypt.py");
    let d = sim.first(ENC).expect("encryption detected");
    assert_eq!(d.priority, Priority::Critical);
    assert!(d.tags.contains(&"T1486".to_owned()), "{:?}", d.tags);
    assert_eq!(d.pid, Some(401));
    // The tree root is the kernel (the Jupyter server is a boundary).
    assert_eq!(d.tree_root, Some(300));
    assert!(
        d.output
            .contains("doc0.txt -> /home/jovyan/work/doc0.txt.enc"),
        "{}",
        d.output
    );
    let ent = d
        .evidence
        .get("detect.entropy")
        .and_then(|v| v.as_array())
        .expect("entropy");
    assert!(!ent.is_empty());
    // One alert for the whole run, not one per file.
    assert_eq!(sim.count(ENC), 1, "{:?}", sim.rules());
    let sd = sim
        .first("Self-Deleting Script")
        .expect("self-deletion detected");
    assert!(sd.tags.contains(&"T1070.004".to_owned()));
    assert_eq!(sd.evidence["detect.file"], "/home/jovyan/encrypt.py");
    // The alert has the rules' JSON shape.
    let ev = sim.last_event.clone().unwrap();
    let a = d.to_alert(&ev, "nb-host");
    let v = serde_json::to_value(&a).unwrap();
    for k in [
        "time",
        "rule",
        "priority",
        "source",
        "hostname",
        "output",
        "tags",
        "output_fields",
    ] {
        assert!(v.get(k).is_some(), "alert lacks {k}: {v}");
    }
    assert_eq!(v["priority"], "Critical");
    assert_eq!(v["source"], "syscall");
    assert!(
        a.output.contains(": Critical Files of one process tree"),
        "{}",
        a.output
    );
    assert!(a.output_fields.contains_key("detect.files"));
}

#[test]
fn single_byte_xor_without_reads_or_inodes_detected_within_three() {
    let mut sim = Sim::default();
    sim.with_reads = false;
    sim.with_inodes = false;
    let files = sim.tree_of_docs("/data", 100);
    let pid = jupyter(&mut sim);
    // XOR 0x42 keeps lower-case text printable: text-ness, not entropy, must catch it.
    let lost = encrypt_and_delete(&mut sim, pid, &files, &[0x42]);
    assert!(matches!(lost, Some(n) if n <= 3), "files lost: {lost:?}");
}

#[test]
fn in_place_encryption_with_rename_detected() {
    let mut sim = Sim::default();
    let files = sim.tree_of_docs("/srv/share", 50);
    sim.spawn(
        500,
        100,
        "python3",
        "/usr/bin/python3",
        &["/tmp/lock.py"],
        "/tmp",
    );
    let mut lost = None;
    for (i, f) in files.iter().enumerate() {
        let fd = sim.open(500, f, "O_RDWR|O_CLOEXEC");
        sim.read(500, fd, f, &text_bytes(i));
        let mut d = sim.write(500, fd, f, &random_bytes(i as u64, 64));
        d.extend(sim.rename(500, f, &format!("{f}.locked")));
        if lost.is_none() && d.iter().any(|d| d.rule == ENC) {
            lost = Some(i + 1);
        }
    }
    assert!(matches!(lost, Some(n) if n <= 3), "files lost: {lost:?}");
}

#[test]
fn fernet_output_detected() {
    let mut sim = Sim::default();
    sim.with_reads = false;
    let files = sim.tree_of_docs("/home/u/docs", 20);
    sim.spawn(
        600,
        100,
        "python3",
        "/usr/bin/python3",
        &["f.py"],
        "/home/u",
    );
    let mut lost = None;
    for (i, f) in files.iter().enumerate() {
        sim.open(600, f, "O_RDONLY|O_CLOEXEC");
        let out = format!("{f}.encrypted");
        let fd = sim.open(600, &out, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        let mut d = sim.write(
            600,
            fd,
            &out,
            b"gAAAAABmZ2xhc3Rlcl9pc19ub3RfYV9rZXk9PT09PT09PT09PT0=",
        );
        d.extend(sim.unlink(600, f));
        if lost.is_none() && d.iter().any(|d| d.rule == ENC) {
            lost = Some(i + 1);
        }
    }
    assert!(matches!(lost, Some(n) if n <= 3), "files lost: {lost:?}");
}

#[test]
fn children_of_one_tree_are_counted_together() {
    // A shell loop running `openssl enc` per file, then `rm`: each process touches one file.
    let mut sim = Sim::default();
    let files = sim.tree_of_docs("/home/u/d", 10);
    sim.spawn(
        700,
        100,
        "bash",
        "/usr/bin/bash",
        &["/tmp/loop.sh"],
        "/home/u",
    );
    let mut pid = 800;
    for (i, f) in files.iter().enumerate() {
        pid += 2;
        sim.spawn(
            pid,
            700,
            "openssl",
            "/usr/bin/openssl",
            &["enc", "-in", f],
            "/home/u",
        );
        let fd = sim.open(pid, f, "O_RDONLY");
        sim.read(pid, fd, f, &text_bytes(i));
        let out = format!("{f}.enc");
        let fd2 = sim.open(pid, &out, "O_WRONLY|O_CREAT|O_TRUNC");
        let mut salted = b"Salted__".to_vec();
        salted.extend(random_bytes(i as u64, 40));
        sim.write(pid, fd2, &out, &salted);
        sim.exit(pid);
        sim.spawn(pid + 1, 700, "rm", "/usr/bin/rm", &[f], "/home/u");
        sim.unlink(pid + 1, f);
        sim.exit(pid + 1);
    }
    let d = sim.first(ENC).expect("detected across the tree");
    // The root is the login shell: the highest ancestor below sshd (a boundary).
    assert_eq!(d.tree_root, Some(100));
}

#[test]
fn decoy_touch_is_immediate() {
    let mut cfg = DetectConfig::default();
    cfg.ransomware.decoys = vec![pyward_detect::glob::Glob::new(
        "/home/*/Documents/.~budget*.xlsx",
    )];
    let mut sim = Sim::new(cfg);
    sim.preexisting("/home/u/Documents/.~budget-2024.xlsx");
    sim.spawn(
        900,
        100,
        "python3",
        "/usr/bin/python3",
        &["x.py"],
        "/home/u",
    );
    // Reading a decoy is not an alert (backups read everything)...
    sim.open(900, "/home/u/Documents/.~budget-2024.xlsx", "O_RDONLY");
    assert!(sim.detections.is_empty());
    // ...renaming it is.
    let d = sim.rename(
        900,
        "/home/u/Documents/.~budget-2024.xlsx",
        "/home/u/Documents/.~budget-2024.xlsx.enc",
    );
    assert_eq!(d.len(), 1, "{:?}", sim.rules());
    assert_eq!(d[0].rule, "Ransomware Decoy File Touched");
    assert!(d[0].tags.contains(&"T1486".to_owned()));
}

#[test]
fn thresholds_come_from_configuration() {
    let yaml = "- detector: ransomware\n  threshold: 10\n  min_files: 10\n";
    let cfg = config::from_yaml_str(yaml, std::path::Path::new("t.yaml")).unwrap();
    let mut sim = Sim::new(cfg);
    let files = sim.tree_of_docs("/data", 30);
    let pid = jupyter(&mut sim);
    let lost = encrypt_and_delete(&mut sim, pid, &files, b"key");
    assert_eq!(lost, Some(10));
    let yaml = "- detector: ransomware\n  enabled: false\n";
    let cfg = config::from_yaml_str(yaml, std::path::Path::new("t.yaml")).unwrap();
    let mut sim = Sim::new(cfg);
    let files = sim.tree_of_docs("/data", 30);
    let pid = jupyter(&mut sim);
    assert_eq!(encrypt_and_delete(&mut sim, pid, &files, b"key"), None);
}

#[test]
fn slow_encryption_outside_the_window_is_not_summed() {
    let mut cfg = DetectConfig::default();
    cfg.ransomware.window_ns = 1_000_000_000;
    let mut sim = Sim::new(cfg);
    let files = sim.tree_of_docs("/data", 20);
    let pid = jupyter(&mut sim);
    for (i, f) in files.iter().enumerate() {
        sim.t += 5_000_000_000; // one file every 5 s, window 1 s
        let fd = sim.open(pid, f, "O_RDONLY");
        sim.read(pid, fd, f, &text_bytes(i));
        let out = format!("{f}.enc");
        let fd2 = sim.open(pid, &out, "O_WRONLY|O_CREAT|O_TRUNC");
        sim.write(pid, fd2, &out, &random_bytes(i as u64, 64));
        sim.unlink(pid, f);
    }
    assert_eq!(sim.count(ENC), 0, "{:?}", sim.rules());
}

// ---------------------------------------------------------------- benign bulk workloads

fn assert_no_ransomware(sim: &Sim, what: &str) {
    let r: Vec<String> = sim
        .rules()
        .into_iter()
        .filter(|r| r.starts_with("Ransomware"))
        .collect();
    assert!(r.is_empty(), "{what}: unexpected {r:?}");
}

/// gzip header + deflate-looking bytes.
fn gz(seed: u64) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 0x08, 0x08, 0, 0, 0, 0, 0, 3];
    v.extend(random_bytes(seed, 54));
    v
}

#[test]
fn gzip_r_and_gunzip_r() {
    let mut sim = Sim::default();
    let files = sim.tree_of_docs("/home/u/logs", 500);
    // gzip -r logs: opens the directory, then works relative to it (openat/unlinkat dirfd).
    sim.spawn(
        1000,
        100,
        "gzip",
        "/usr/bin/gzip",
        &["-r", "logs"],
        "/home/u",
    );
    let dfd = sim.open(
        1000,
        "/home/u/logs",
        "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY",
    );
    for (i, f) in files.iter().enumerate() {
        let name = f.rsplit('/').next().unwrap().to_owned();
        let fd = sim.open_at(
            1000,
            f,
            dfd,
            &name,
            "O_RDONLY|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW",
        );
        sim.read(1000, fd, f, &text_bytes(i));
        let out = format!("{f}.gz");
        let fd2 = sim.open_at(
            1000,
            &out,
            dfd,
            &format!("{name}.gz"),
            "O_WRONLY|O_CREAT|O_EXCL",
        );
        sim.write(1000, fd2, &out, &gz(i as u64));
        sim.chmod(1000, &out, 0o644);
        sim.unlinkat(1000, dfd, &name, f);
    }
    sim.exit(1000);
    assert_no_ransomware(&sim, "gzip -r");
    // gunzip -r logs
    sim.spawn(
        1001,
        100,
        "gzip",
        "/usr/bin/gzip",
        &["-d", "-r", "logs"],
        "/home/u",
    );
    let dfd = sim.open(
        1001,
        "/home/u/logs",
        "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY",
    );
    for (i, f) in files.iter().enumerate() {
        let name = f.rsplit('/').next().unwrap().to_owned();
        let gzp = format!("{f}.gz");
        let fd = sim.open_at(
            1001,
            &gzp,
            dfd,
            &format!("{name}.gz"),
            "O_RDONLY|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW",
        );
        sim.read(1001, fd, &gzp, &gz(i as u64));
        let fd2 = sim.open_at(1001, f, dfd, &name, "O_WRONLY|O_CREAT|O_EXCL");
        sim.write(1001, fd2, f, &text_bytes(i));
        sim.unlinkat(1001, dfd, &format!("{name}.gz"), &gzp);
    }
    assert_no_ransomware(&sim, "gunzip -r");
}

#[test]
fn tar_czf_and_xzf_over_existing_tree() {
    let mut sim = Sim::default();
    let files = sim.tree_of_docs("/home/u/proj", 300);
    // tar czf proj.tgz proj: tar opens the archive, gzip (child) writes it, tar reads files.
    sim.spawn(
        1100,
        100,
        "tar",
        "/usr/bin/tar",
        &["czf", "proj.tgz", "proj"],
        "/home/u",
    );
    let afd = sim.open(1100, "/home/u/proj.tgz", "O_WRONLY|O_CREAT|O_TRUNC");
    sim.spawn(1101, 1100, "gzip", "/usr/bin/gzip", &[], "/home/u");
    sim.write(1101, 1, "/home/u/proj.tgz", &gz(7));
    let _ = afd;
    for (i, f) in files.iter().enumerate() {
        let fd = sim.open(1100, f, "O_RDONLY|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC");
        sim.read(1100, fd, f, &text_bytes(i));
    }
    sim.exit(1101);
    sim.exit(1100);
    assert_no_ransomware(&sim, "tar czf");
    // tar xzf proj.tgz over the existing tree: EEXIST, unlink, create again.
    sim.spawn(
        1200,
        100,
        "tar",
        "/usr/bin/tar",
        &["xzf", "proj.tgz"],
        "/home/u",
    );
    sim.spawn(1201, 1200, "gzip", "/usr/bin/gzip", &["-d"], "/home/u");
    let fd = sim.open(1201, "/home/u/proj.tgz", "O_RDONLY");
    sim.read(1201, fd, "/home/u/proj.tgz", &gz(7));
    for (i, f) in files.iter().enumerate() {
        let flags = "O_WRONLY|O_CREAT|O_EXCL|O_NOCTTY|O_NONBLOCK|O_CLOEXEC";
        assert_eq!(sim.open(1200, f, flags), -1);
        sim.unlink(1200, f);
        let fd = sim.open(1200, f, flags);
        sim.write(1200, fd, f, &text_bytes(i));
    }
    assert_no_ransomware(&sim, "tar xzf");
}

#[test]
fn cp_r_and_shutil_move_of_random_files() {
    let mut sim = Sim::default();
    let src: Vec<String> = (0..300)
        .map(|i| {
            let p = format!("/data/in/blob{i}.bin");
            sim.preexisting(&p);
            p
        })
        .collect();
    // cp -r in out (random-content files: opaque bytes, but copies)
    sim.spawn(
        1300,
        100,
        "cp",
        "/usr/bin/cp",
        &["-r", "in", "out"],
        "/data",
    );
    for (i, f) in src.iter().enumerate() {
        let fd = sim.open(1300, f, "O_RDONLY|O_NOFOLLOW");
        sim.read(1300, fd, f, &random_bytes(i as u64, 64));
        let dst = f.replace("/in/", "/out/");
        let fd2 = sim.open(1300, &dst, "O_WRONLY|O_CREAT|O_EXCL");
        sim.write(1300, fd2, &dst, &random_bytes(i as u64, 64));
    }
    sim.exit(1300);
    assert_no_ransomware(&sim, "cp -r");
    // rsync-like move with Python: shutil.copytree then shutil.rmtree (dir fds)
    sim.spawn(
        1400,
        100,
        "python3",
        "/usr/bin/python3",
        &[
            "-c",
            "import shutil; shutil.copytree('out','moved'); shutil.rmtree('out')",
        ],
        "/data",
    );
    for (i, f) in src.iter().enumerate() {
        let s = f.replace("/in/", "/out/");
        let d = f.replace("/in/", "/moved/");
        let fd = sim.open(1400, &s, "O_RDONLY|O_CLOEXEC");
        sim.read(1400, fd, &s, &random_bytes(i as u64, 64));
        let fd2 = sim.open(1400, &d, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        sim.write(1400, fd2, &d, &random_bytes(i as u64, 64));
    }
    let dfd = sim.open(
        1400,
        "/data/out",
        "O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY",
    );
    for f in &src {
        let s = f.replace("/in/", "/out/");
        let name = s.rsplit('/').next().unwrap().to_owned();
        sim.unlinkat(1400, dfd, &name, &s);
    }
    assert_no_ransomware(&sim, "shutil copytree + rmtree");
}

#[test]
fn git_gc() {
    let mut sim = Sim::default();
    let objs: Vec<String> = (0..400)
        .map(|i| {
            let p = format!(
                "/home/u/repo/.git/objects/{:02x}/{:038x}",
                i % 256,
                i * 7919
            );
            sim.preexisting(&p);
            p
        })
        .collect();
    sim.preexisting("/home/u/repo/.git/packed-refs");
    sim.spawn(1500, 100, "git", "/usr/bin/git", &["gc"], "/home/u/repo");
    // git pack-objects reads every loose object (zlib) and writes a pack and its index.
    sim.spawn(
        1501,
        1500,
        "git",
        "/usr/bin/git",
        &["pack-objects", "--all"],
        "/home/u/repo",
    );
    for (i, o) in objs.iter().enumerate() {
        let fd = sim.open(1501, o, "O_RDONLY|O_CLOEXEC");
        let mut z = vec![0x78, 0x01];
        z.extend(random_bytes(i as u64, 40));
        sim.read(1501, fd, o, &z);
    }
    let tmp = "/home/u/repo/.git/objects/pack/tmp_pack_Ab12Cd";
    let fd = sim.open(1501, tmp, "O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC");
    let mut pack = b"PACK\x00\x00\x00\x02".to_vec();
    pack.extend(random_bytes(1, 40));
    sim.write(1501, fd, tmp, &pack);
    sim.rename(1501, tmp, "/home/u/repo/.git/objects/pack/pack-9f1c.pack");
    let tmpi = "/home/u/repo/.git/objects/pack/tmp_idx_Ef34";
    let fd = sim.open(1501, tmpi, "O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC");
    sim.write(1501, fd, tmpi, b"\xfftOc\x00\x00\x00\x02rest-of-index");
    sim.rename(1501, tmpi, "/home/u/repo/.git/objects/pack/pack-9f1c.idx");
    sim.exit(1501);
    // packed-refs rewritten through a lock file
    let fd = sim.open(1500, "/home/u/repo/.git/packed-refs", "O_RDONLY");
    sim.read(
        1500,
        fd,
        "/home/u/repo/.git/packed-refs",
        b"# pack-refs with: peeled fully-peeled sorted \n",
    );
    let fd = sim.open(
        1500,
        "/home/u/repo/.git/packed-refs.lock",
        "O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC",
    );
    sim.write(
        1500,
        fd,
        "/home/u/repo/.git/packed-refs.lock",
        b"# pack-refs with: peeled fully-peeled sorted \n9f1c",
    );
    sim.rename(
        1500,
        "/home/u/repo/.git/packed-refs.lock",
        "/home/u/repo/.git/packed-refs",
    );
    // git prune-packed deletes the loose objects now in the pack
    sim.spawn(
        1502,
        1500,
        "git",
        "/usr/bin/git",
        &["prune-packed"],
        "/home/u/repo",
    );
    for o in &objs {
        sim.unlink(1502, o);
    }
    assert_no_ransomware(&sim, "git gc");
}

#[test]
fn pip_install_compileall_and_sqlite() {
    let mut sim = Sim::default();
    // pip install a wheel (over an older version: uninstall stashes, then deletes)
    sim.preexisting("/venv/lib/python3.12/site-packages/demo/__init__.py");
    sim.spawn(
        1600,
        100,
        "pip",
        "/venv/bin/python3",
        &["/venv/bin/pip", "install", "demo-2.0-py3-none-any.whl"],
        "/home/u",
    );
    let fd = sim.open(
        1600,
        "/home/u/demo-2.0-py3-none-any.whl",
        "O_RDONLY|O_CLOEXEC",
    );
    sim.read(
        1600,
        fd,
        "/home/u/demo-2.0-py3-none-any.whl",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    );
    sim.rename(
        1600,
        "/venv/lib/python3.12/site-packages/demo/__init__.py",
        "/tmp/pip-uninstall-x1/__init__.py",
    );
    sim.unlink(1600, "/tmp/pip-uninstall-x1/__init__.py");
    for i in 0..200 {
        let p = format!("/venv/lib/python3.12/site-packages/demo/mod{i}.py");
        let fd = sim.open(1600, &p, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        sim.write(
            1600,
            fd,
            &p,
            format!("\"\"\"Module {i}.\"\"\"\nimport os\n").as_bytes(),
        );
        let pyc =
            format!("/venv/lib/python3.12/site-packages/demo/__pycache__/mod{i}.cpython-312.pyc");
        let tmp = format!("{pyc}.{}", 140_000_000 + i);
        let fd = sim.open(1600, &tmp, "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC");
        let mut b = vec![0xcb, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0];
        b.extend(random_bytes(i, 40));
        sim.write(1600, fd, &tmp, &b);
        sim.rename(1600, &tmp, &pyc);
    }
    let so = "/venv/lib/python3.12/site-packages/demo/_speed.cpython-312-x86_64-linux-gnu.so";
    let fd = sim.open(1600, so, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
    sim.write(1600, fd, so, b"\x7fELF\x02\x01\x01\x00");
    let fd = sim.open(1600, "/venv/bin/demo", "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
    sim.write(
        1600,
        fd,
        "/venv/bin/demo",
        b"#!/venv/bin/python3\nimport sys\nfrom demo import main\n",
    );
    sim.chmod(1600, "/venv/bin/demo", 0o755);
    sim.exit(1600);
    // the console script pip wrote is allowed to run
    sim.spawn(
        1601,
        100,
        "demo",
        "/venv/bin/python3",
        &["/venv/bin/demo"],
        "/home/u",
    );
    let fd = sim.open(1601, "/venv/bin/demo", "O_RDONLY|O_CLOEXEC");
    sim.read(1601, fd, "/venv/bin/demo", b"#!/venv/bin/python3\n");
    sim.exit(1601);
    // python3 -m compileall src
    let srcs = sim.tree_of_docs("/home/u/src", 0);
    let _ = srcs;
    sim.spawn(
        1700,
        100,
        "python3",
        "/usr/bin/python3",
        &["-m", "compileall", "src"],
        "/home/u",
    );
    for i in 0..300 {
        let p = format!("/home/u/src/m{i}.py");
        sim.preexisting(&p);
        let fd = sim.open(1700, &p, "O_RDONLY|O_CLOEXEC");
        sim.read(1700, fd, &p, b"import os\n\ndef f():\n    return 1\n");
        let pyc = format!("/home/u/src/__pycache__/m{i}.cpython-312.pyc");
        let tmp = format!("{pyc}.{}", 139_900_000 + i);
        let fd = sim.open(1700, &tmp, "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC");
        let mut b = vec![0xcb, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0];
        b.extend(random_bytes(i, 40));
        sim.write(1700, fd, &tmp, &b);
        sim.rename(1700, &tmp, &pyc);
    }
    sim.exit(1700);
    // sqlite bulk inserts, one transaction each (rollback journal)
    sim.preexisting("/home/u/app.db");
    sim.spawn(
        1800,
        100,
        "python3",
        "/usr/bin/python3",
        &["load.py"],
        "/home/u",
    );
    let db = "/home/u/app.db";
    let fd = sim.open(1800, db, "O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC");
    sim.read(
        1800,
        fd,
        db,
        b"SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20",
    );
    for _ in 0..500 {
        let j = "/home/u/app.db-journal";
        let jfd = sim.open(1800, j, "O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC");
        sim.write(
            1800,
            jfd,
            j,
            b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7\x00\x00\x00\x00",
        );
        let fd = sim.open(1800, db, "O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC");
        sim.write(
            1800,
            fd,
            db,
            b"SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20",
        );
        sim.unlink(1800, j);
    }
    assert_no_ransomware(&sim, "pip / compileall / sqlite");
    let drift: Vec<String> = sim
        .rules()
        .into_iter()
        .filter(|r| r.contains("Drift"))
        .collect();
    assert!(
        drift.is_empty(),
        "pip's console script is allowlisted: {drift:?}"
    );
}

/// CI regression: `compileall` putting its temp `.pyc.<id>` files in place, when the opens
/// that created them were not joined to the renames (a path resolved against a stale cwd):
/// renames of files the tree never read are not encryption.
#[test]
fn renames_of_files_the_tree_never_read_do_not_count() {
    let mut sim = Sim::default();
    sim.spawn(
        1900,
        100,
        "python3",
        "/usr/bin/python3",
        &["-m", "compileall", "-q", "copy"],
        "/home/u",
    );
    for i in 0..300 {
        let pyc = format!(
            "/elsewhere/copy/pkg{}/__pycache__/mod_{i}.cpython-311.pyc",
            i % 10
        );
        let tmp = format!("{pyc}.140536300155888");
        sim.rename(1900, &tmp, &pyc);
    }
    sim.exit(1900);
    assert_no_ransomware(&sim, "renames of never-read files");
}
