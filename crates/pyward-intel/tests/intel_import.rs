//! OSV import into the local database: folders, zips, re-import, status, bad input.

use pyward_intel::{import, status, Intel, IntelError, RecordSource};
use std::io::Write;
use std::path::Path;

fn osv(id: &str, name: &str, modified: &str, affected_extra: &str, extra: &str) -> String {
    format!(
        r#"{{"schema_version":"1.5.0","id":"{id}","summary":"Malicious code in {name} (PyPI)",
           "details":"test record","modified":"{modified}","published":"2024-01-01T00:00:00Z",
           "affected":[{{"package":{{"ecosystem":"PyPI","name":"{name}","purl":"pkg:pypi/{name}"}}{affected_extra}}}],
           "references":[{{"type":"WEB","url":"https://example.invalid/{id}"}}]{extra}}}"#
    )
}

fn records() -> Vec<(&'static str, String)> {
    vec![
        (
            "osv/malicious/pypi/evil-pkg/MAL-2024-0001.json",
            osv(
                "MAL-2024-0001",
                "evil-pkg",
                "2024-02-01T00:00:00Z",
                r#","ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"1.2"}]}]"#,
                "",
            ),
        ),
        (
            "osv/malicious/pypi/Bad_Thing/MAL-2024-0002.json",
            osv("MAL-2024-0002", "Bad_Thing", "2024-02-01T00:00:00Z", r#","versions":["0.1","0.2"]"#, ""),
        ),
        (
            "osv/malicious/pypi/stealer/MAL-2024-0003.json",
            osv(
                "MAL-2024-0003",
                "stealer",
                "2024-02-01T00:00:00Z",
                r#","ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]"#,
                r#","database_specific":{"iocs":{"domains":["c2.example"],"urls":["http://c2.example/x"],"ip_addresses":["192.0.2.10"]}}"#,
            ),
        ),
        (
            "osv/withdrawn/pypi/was-bad/MAL-2024-0004.json",
            osv(
                "MAL-2024-0004",
                "was-bad",
                "2024-02-01T00:00:00Z",
                r#","ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]"#,
                r#","withdrawn":"2024-03-01T00:00:00Z""#,
            ),
        ),
        (
            "vulns/PYSEC-2024-1.json",
            r#"{"id":"PYSEC-2024-1","summary":"A header leak","modified":"2024-01-01T00:00:00Z",
                "affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
                "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31.0"}]}]}]}"#
                .to_string(),
        ),
        (
            "osv/malicious/npm/left-pad-evil/MAL-2024-9.json",
            r#"{"id":"MAL-2024-9","affected":[{"package":{"ecosystem":"npm","name":"left-pad-evil"}}]}"#
                .to_string(),
        ),
        ("osv/malicious/pypi/broken/MAL-2024-0005.json", "{\"id\": \"MAL-2024-0005\", \"affected\": [".to_string()),
        (
            "osv/malicious/pypi/noid/MAL-0000-x.json",
            r#"{"summary":"no id","affected":[{"package":{"ecosystem":"PyPI","name":"noid"}}]}"#.to_string(),
        ),
        ("osv/malicious/pypi/README.md", "not a record".to_string()),
    ]
}

fn write_tree(root: &Path, files: &[(&str, String)]) {
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn write_zip(path: &Path, files: &[(&str, String)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (rel, text) in files {
        z.start_file(*rel, opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

fn check_loaded(db: &Path) {
    let intel = Intel::open(Some(db)).unwrap();
    // PEP 440 range: introduced 1.0, fixed 1.2.
    assert_eq!(intel.lookup("evil-pkg", Some("1.1"))[0].id, "MAL-2024-0001");
    assert_eq!(intel.lookup("Evil_Pkg", Some("1.0")).len(), 1);
    assert!(intel.lookup("evil-pkg", Some("1.2")).is_empty());
    assert!(intel.lookup("evil-pkg", Some("0.9")).is_empty());
    assert_eq!(
        intel.lookup("evil-pkg", None).len(),
        1,
        "unknown version: any affected"
    );
    // Explicit versions, PEP 503 names.
    assert_eq!(intel.lookup("bad.thing", Some("0.2")).len(), 1);
    assert!(intel.lookup("bad-thing", Some("0.3")).is_empty());
    // All versions, with IOCs.
    let s = intel.lookup("stealer", Some("99.0"));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].iocs.ips, vec!["192.0.2.10"]);
    assert_eq!(s[0].iocs.domains, vec!["c2.example"]);
    assert!(matches!(&s[0].source, RecordSource::Osv { file } if file.contains("MAL-2024-0003")));
    // Withdrawn: stored, not matched. Vulnerabilities: not malicious.
    assert!(intel.lookup("was-bad", Some("1")).is_empty());
    assert!(intel.lookup("requests", Some("2.0.0")).is_empty());
    assert!(intel.lookup("left-pad-evil", None).is_empty());
    // The built-ins are still there.
    assert_eq!(
        intel.lookup("jeIlyfish", Some("0.5.1"))[0].id,
        "PYWARD-2019-0001"
    );
    assert_eq!(intel.builtin_count(), 2);
    assert_eq!(intel.imported_count(), 3);
}

#[test]
fn import_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_tree(&src, &records());
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", src.join("osv/link")).unwrap();
    let db = dir.path().join("data/intel.sqlite");
    let stats = import(&db, &src).unwrap();
    assert_eq!(stats.documents, 8, "{stats}");
    assert_eq!(stats.stored, 5);
    assert_eq!(stats.malicious, 4);
    assert_eq!(stats.vulnerabilities, 1);
    assert_eq!(stats.withdrawn, 1);
    assert_eq!(stats.other_ecosystems, 1);
    assert_eq!(stats.bad, 2);
    let text = stats.to_string();
    assert!(
        text.contains("MAL-2024-0005.json") && text.contains("not valid JSON"),
        "{text}"
    );
    assert!(
        text.contains("MAL-0000-x.json") && text.contains("without an `id`"),
        "{text}"
    );
    #[cfg(unix)]
    assert!(text.contains("symbolic link"), "{text}");
    check_loaded(&db);

    let st = status(&db).unwrap();
    assert!(st.database_exists);
    assert_eq!(st.builtin_records, 2);
    assert_eq!(st.imported_malicious, 3);
    assert_eq!(st.imported_vulnerabilities, 1);
    assert_eq!(st.imported_withdrawn, 1);
    assert_eq!(st.imports.len(), 1);
    assert_eq!(st.newest_modified.as_deref(), Some("2024-02-01T00:00:00Z"));
    assert!(st.last_import.is_some());
    assert_eq!(st.popular_names, 15_000);
    let shown = st.to_string();
    assert!(
        shown.contains(&db.display().to_string()) && shown.contains("3 malicious"),
        "{shown}"
    );
    assert!(serde_json::to_value(&st).unwrap()["imported_malicious"] == 3);
}

#[test]
fn import_zip_and_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("all.zip");
    write_zip(&zip_path, &records());
    let db = dir.path().join("intel.sqlite");
    let stats = import(&db, &zip_path).unwrap();
    assert_eq!(
        (stats.stored, stats.bad, stats.other_ecosystems),
        (5, 2, 1),
        "{stats}"
    );
    assert!(stats
        .to_string()
        .contains("all.zip!osv/malicious/pypi/broken/MAL-2024-0005.json"));
    check_loaded(&db);

    // Same ids again: an older copy is ignored, a newer one replaces the record.
    let older = osv(
        "MAL-2024-0001",
        "evil-pkg",
        "2023-01-01T00:00:00Z",
        r#","ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]"#,
        "",
    );
    let newer = osv(
        "MAL-2024-0002",
        "Bad_Thing",
        "2024-05-01T00:00:00Z",
        r#","ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"last_affected":"0.3"}]}]"#,
        "",
    );
    let one = dir.path().join("update");
    write_tree(&one, &[("a.json", older), ("b.json", newer)]);
    let stats = import(&db, &one).unwrap();
    assert_eq!((stats.stored, stats.unchanged), (1, 1), "{stats}");
    let intel = Intel::open(Some(&db)).unwrap();
    assert!(
        intel.lookup("evil-pkg", Some("2.0")).is_empty(),
        "older copy must not replace"
    );
    assert_eq!(
        intel.lookup("bad-thing", Some("0.3")).len(),
        1,
        "newer copy replaced"
    );
    assert!(intel.lookup("bad-thing", Some("0.4")).is_empty());
    assert_eq!(intel.imported_count(), 3, "upsert by id, no duplicates");
    let st = status(&db).unwrap();
    assert_eq!(st.imports.len(), 2);
    assert_eq!(st.newest_modified.as_deref(), Some("2024-05-01T00:00:00Z"));
}

#[test]
fn single_file_and_array() {
    let dir = tempfile::tempdir().unwrap();
    let rec = records();
    let one = dir.path().join("one.json");
    std::fs::write(&one, &rec[0].1).unwrap();
    let db = dir.path().join("intel.sqlite");
    assert_eq!(import(&db, &one).unwrap().stored, 1);
    let arr = dir.path().join("arr.json");
    std::fs::write(&arr, format!("[{},{}]", rec[1].1, rec[2].1)).unwrap();
    assert_eq!(import(&db, &arr).unwrap().stored, 2);
    assert_eq!(Intel::open(Some(&db)).unwrap().imported_count(), 3);
}

#[test]
fn zip_bomb_and_oversized_entries_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("bomb.zip");
    let mut files = records();
    files.truncate(1);
    // 17 MiB of spaces compresses to a few KiB: over the size cap and the ratio cap.
    files.push(("huge.json", " ".repeat(17 << 20)));
    write_zip(&zip_path, &files);
    let db = dir.path().join("intel.sqlite");
    let stats = import(&db, &zip_path).unwrap();
    assert_eq!(stats.stored, 1);
    assert_eq!(stats.skipped, 1);
    assert!(stats.to_string().contains("huge.json"), "{stats}");
}

#[test]
fn bad_sources_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("intel.sqlite");
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    let e = import(&db, &txt).unwrap_err();
    assert!(matches!(e, IntelError::Input { .. }));
    assert!(
        e.to_string().contains("notes.txt") && e.to_string().contains("not an OSV JSON file"),
        "{e}"
    );

    let trunc = dir.path().join("trunc.zip");
    std::fs::write(&trunc, b"PK\x03\x04garbage").unwrap();
    let e = import(&db, &trunc).unwrap_err();
    assert!(
        e.to_string().contains("trunc.zip") && e.to_string().contains("zip"),
        "{e}"
    );

    let missing = dir.path().join("missing");
    assert!(import(&db, &missing)
        .unwrap_err()
        .to_string()
        .contains("missing"));
    assert!(!db.exists(), "nothing written for a bad source");

    // A file that is not a database.
    let bad_db = dir.path().join("bad.sqlite");
    std::fs::write(&bad_db, vec![0x42u8; 4096]).unwrap();
    let e = Intel::open(Some(&bad_db)).unwrap_err();
    assert!(
        e.to_string().contains("bad.sqlite") && e.to_string().contains("pyward intel import"),
        "{e}"
    );
    assert!(status(&bad_db).is_err());
}

#[test]
fn missing_database_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nope/intel.sqlite");
    let intel = Intel::open(Some(&db)).unwrap();
    assert_eq!(intel.imported_count(), 0);
    assert_eq!(intel.lookup("python3-dateutil", None).len(), 1);
    let st = status(&db).unwrap();
    assert!(!st.database_exists);
    assert!(st.to_string().contains("pyward intel import"));
    assert!(!db.exists(), "status must not create the database");
}

#[test]
fn default_db_path_honours_pyward_data_dir() {
    std::env::set_var("PYWARD_DATA_DIR", "/tmp/pyward-test-data");
    assert_eq!(
        Intel::default_db_path().unwrap(),
        Path::new("/tmp/pyward-test-data/intel.sqlite")
    );
    std::env::remove_var("PYWARD_DATA_DIR");
    if let Some(p) = Intel::default_db_path() {
        assert!(p.ends_with("pyward/intel.sqlite"));
    }
}
