//! Structural tests of every format on realistic reports (schema validation proper is in
//! report_schemas.rs, behind PYWARD_SCHEMA_TESTS=1).

mod support;

use pyward_core::{Action, ScanReport};
use pyward_report::{render, write_report, Format, RenderOptions};
use serde_json::Value;
use std::collections::HashSet;

const PLAIN: RenderOptions = RenderOptions {
    color: false,
    verbose: false,
};

fn parse(report: &ScanReport, format: Format) -> Value {
    let text = render(report, format, &PLAIN);
    assert!(text.ends_with('\n'));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{format} output is not JSON: {e}\n{text}"))
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

// ---------------------------------------------------------------- table

#[test]
fn table_groups_findings_and_ends_with_one_verdict() {
    let r = support::incident_report();
    let t = render(&r, Format::Table, &PLAIN);
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].contains("incident1.tar") && lines[0].contains("docker-archive"),
        "{t}"
    );
    assert!(
        t.contains("scanned 1234 files: 5 packages, 6 findings, 1 warning"),
        "{t}"
    );
    assert!(t.contains("incident1:latest") && t.contains("linux/amd64") && t.contains("3 layers"));

    // One verdict line, last, with counts derived from the findings.
    let verdict = lines.last().copied().unwrap_or_default();
    assert_eq!(
        verdict,
        "STOP: 6 findings (5 STOP, 1 WARN) in 3 packages and 1 file — policy failed"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("STOP:")).count(), 1);

    // Groups: STOP packages (by name) and the file before the WARN package.
    let pos = |needle: &str| {
        t.find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?} in\n{t}"))
    };
    assert!(pos("STOP  jeIlyfish 0.5.1") < pos("STOP  python3-dateutil 2.8.1"));
    assert!(pos("STOP  python3-dateutil 2.8.1") < pos("STOP  file /usr/local"));
    assert!(pos("STOP  file /usr/local") < pos("WARN  reqeusts 2.31.0"));
    // Each package appears as one group even with two findings.
    assert_eq!(
        t.matches("  jeIlyfish 0.5.1  installed (dist-info)")
            .count(),
        1,
        "{t}"
    );

    // Location with layer and shortened history, evidence, references, MITRE ids.
    assert!(t.contains("at /usr/local/lib/python3.12/site-packages/jeIlyfish-0.5.1.dist-info/METADATA, layer 2 sha256:222222222222 (pip install python3-dateutil)"), "{t}");
    assert!(t.contains("at /app/requirements.txt:3, layer 1"), "{t}");
    assert!(
        t.contains("imitates: jellyfish")
            && t.contains("transformation: look-alike characters (I/l)")
    );
    assert!(t.contains("ioc.ip: 68.183.212.246"));
    assert!(
        t.contains("references: PYWARD-2019-0001, https://github.com/dateutil/dateutil/issues/984")
    );
    assert!(t.contains("MITRE ATT&CK: T1195.001, T1552.004"));
    // `imitates` is listed before the rest of the evidence.
    assert!(pos("imitates: jellyfish") < pos("confidence: 0.98"));

    // Packages summarised per source kind; warnings listed.
    assert!(
        t.contains("packages: 5 (4 installed (dist-info), 1 declared (requirements))"),
        "{t}"
    );
    assert!(t.contains("! /usr/lib/python3/dist-packages/broken-1.0.dist-info/METADATA: METADATA is not valid UTF-8"));
    assert!(!t.contains('\x1b'), "no colour unless asked");
}

#[test]
fn table_verbose_lists_every_package() {
    let r = support::incident_report();
    let t = render(
        &r,
        Format::Table,
        &RenderOptions {
            color: false,
            verbose: true,
        },
    );
    assert!(t.contains("PACKAGES (5)"));
    let six_rows: Vec<&str> = t
        .lines()
        .filter(|l| l.trim_start().starts_with("six "))
        .collect();
    assert_eq!(six_rows.len(), 2, "{t}");
    assert!(six_rows.iter().any(
        |l| l.contains("/usr/lib/python3/dist-packages/six-1.16.0") && l.contains("[layer 0]")
    ));
    assert!(t.contains("/app/requirements.txt:3 [layer 1]"));
    assert!(t.contains("T1036.005 (Masquerading: Match Legitimate Name or Location)"));
}

#[test]
fn table_colours_actions_only_when_asked() {
    let r = support::incident_report();
    let t = render(
        &r,
        Format::Table,
        &RenderOptions {
            color: true,
            verbose: false,
        },
    );
    let red = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    let yellow = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Yellow.into()));
    assert!(
        t.contains(&format!("{}STOP{}", red.render(), red.render_reset())),
        "{t:?}"
    );
    assert!(t.contains(&format!("{}WARN{}", yellow.render(), yellow.render_reset())));
    let last = t.lines().last().unwrap_or_default();
    assert!(last.starts_with(&red.render().to_string()), "{last:?}");

    let go = support::clean_report(3);
    let t = render(
        &go,
        Format::Table,
        &RenderOptions {
            color: true,
            verbose: false,
        },
    );
    let green = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Green.into()));
    assert!(t.contains(&format!("{}GO{}", green.render(), green.render_reset())));
}

#[test]
fn table_clean_scan_says_go() {
    let r = support::clean_report(157);
    let t = render(&r, Format::Table, &PLAIN);
    assert_eq!(t.lines().last(), Some("GO: no findings in 157 packages"));
    assert!(!t.contains("FINDINGS"));
    assert_eq!(
        pyward_report::table::verdict(&r, false),
        "GO: no findings in 157 packages"
    );
}

#[test]
fn table_escapes_hostile_text() {
    let r = support::hostile_report();
    for verbose in [false, true] {
        let t = render(
            &r,
            Format::Table,
            &RenderOptions {
                color: false,
                verbose,
            },
        );
        assert!(
            !t.contains('\x1b') && !t.contains('\x07') && !t.contains('\r'),
            "{t:?}"
        );
        assert!(!t.contains('\u{202e}'));
        assert!(
            t.contains("evil\\u{1b}[2J\\u{1b}[31mpkg\\u{202e}yp."),
            "{t}"
        );
        // The forged verdict inside a message stays inside its line.
        assert_eq!(t.lines().filter(|l| l.starts_with("GO:")).count(), 0, "{t}");
        assert!(t.contains("(allowlisted by team-allowlist)"));
        assert!(
            t.lines()
                .last()
                .unwrap_or_default()
                .starts_with("WARN: 3 findings (2 WARN, 1 allowlisted)"),
            "{t}"
        );
        // Huge evidence is cut unless verbose.
        let longest = t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert_eq!(longest > 1000, verbose, "longest line {longest}");
    }
}

// ---------------------------------------------------------------- json

#[test]
fn json_has_the_documented_fields() {
    let r = support::incident_report();
    let v = parse(&r, Format::Json);
    assert_eq!(s(&v, "schema_version"), "1.0");
    assert_eq!(s(&v, "final_action"), "STOP");
    assert_eq!(s(&v["target"], "kind"), "docker-archive");
    let packages = arr(&v, "packages");
    assert_eq!(packages.len(), r.packages.len());
    for (p, orig) in packages.iter().zip(&r.packages) {
        assert_eq!(s(p, "name"), orig.name);
        assert_eq!(s(p, "normalized"), orig.normalized);
        assert_eq!(p["version"].as_str(), orig.version.as_deref());
        assert_eq!(s(p, "purl"), orig.purl);
        assert_eq!(s(&p["location"], "path"), orig.location.path);
        assert!(
            p["source"]["type"].is_string() && p["source"]["kind"].is_string(),
            "{p}"
        );
        // `layer` is lifted next to `location` for the consumers.
        assert_eq!(p["layer"], p["location"]["layer"], "{p}");
        assert!(p["layer"]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")));
    }
    let jelly = packages
        .iter()
        .find(|p| p["name"] == "jeIlyfish")
        .unwrap_or(&Value::Null);
    assert_eq!(jelly["normalized"], "jeilyfish");
    assert_eq!(jelly["layer"]["index"], 2);

    let findings = arr(&v, "findings");
    assert_eq!(findings.len(), 6);
    for f in findings {
        for key in [
            "rule_id", "gate", "trigger", "action", "severity", "message",
        ] {
            assert!(f[key].is_string(), "{key} in {f}");
        }
        assert!(f["mitre"].is_array() && f.get("path").is_some() && f.get("package").is_some());
        assert!(matches!(s(f, "action"), "STOP" | "WARN" | "GO"));
    }
    assert_eq!(findings[0]["mitre"][0]["id"], "T1195.001");
    assert_eq!(findings[0]["package"]["name"], "jeIlyfish");
}

#[test]
fn json_round_trips_to_the_same_report() {
    for r in [
        support::incident_report(),
        support::clean_report(4),
        support::hostile_report(),
    ] {
        let text = render(&r, Format::Json, &PLAIN);
        let back: ScanReport = serde_json::from_str(&text).expect("JSON report reads back");
        assert_eq!(back, r);
    }
}

// ---------------------------------------------------------------- sarif

#[test]
fn sarif_has_what_github_code_scanning_needs() {
    let r = support::incident_report();
    let v = parse(&r, Format::Sarif);
    assert_eq!(s(&v, "version"), "2.1.0");
    assert!(s(&v, "$schema").contains("sarif"));
    let run = &arr(&v, "runs")[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(s(driver, "name"), "pyward");
    assert_eq!(s(driver, "version"), "0.1.0");
    assert!(s(driver, "informationUri").starts_with("http"));

    let rules = arr(driver, "rules");
    let ids: Vec<&str> = rules.iter().map(|r| s(r, "id")).collect();
    let distinct: HashSet<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        distinct.len(),
        "one rule per distinct rule_id: {ids:?}"
    );
    for rule in rules {
        assert!(!s(&rule["shortDescription"], "text").is_empty());
        assert!(!s(&rule["fullDescription"], "text").is_empty());
        let sev: f64 = s(&rule["properties"], "security-severity")
            .parse()
            .expect("numeric");
        assert!((0.0..=10.0).contains(&sev));
        let tags: Vec<&str> = arr(&rule["properties"], "tags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(tags.contains(&"security"), "{tags:?}");
    }
    let km = rules
        .iter()
        .find(|r| r["id"] == "intel.known-malicious")
        .unwrap_or(&Value::Null);
    assert_eq!(km["defaultConfiguration"]["level"], "error");
    assert_eq!(km["properties"]["security-severity"], "9.5");
    let km_tags = arr(&km["properties"], "tags");
    assert!(
        km_tags.contains(&Value::from("T1195.001")) && km_tags.contains(&Value::from("T1552.004"))
    );
    let ts = rules
        .iter()
        .find(|r| r["id"] == "names.typosquat")
        .unwrap_or(&Value::Null);
    assert_eq!(
        ts["properties"]["security-severity"], "8.0",
        "worst severity of the rule"
    );

    let results = arr(run, "results");
    assert_eq!(results.len(), r.findings.len());
    let mut prints = HashSet::new();
    for res in results {
        let idx = res["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
        let action = s(&res["properties"], "action");
        let want = match action {
            "STOP" => "error",
            "WARN" => "warning",
            _ => "note",
        };
        assert_eq!(s(res, "level"), want);
        assert!(!s(&res["message"], "text").is_empty());
        let phys = &res["locations"][0]["physicalLocation"];
        let uri = s(&phys["artifactLocation"], "uri");
        assert!(!uri.starts_with('/') && !uri.contains(' '), "{uri}");
        assert_eq!(phys["artifactLocation"]["uriBaseId"], "ROOTPATH");
        assert!(phys["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
        let fp = s(&res["partialFingerprints"], "pywardFinding/v1");
        assert_eq!(fp.len(), 32);
        assert!(prints.insert(fp.to_string()), "fingerprints are distinct");
        for key in ["gate", "trigger", "action"] {
            assert!(res["properties"][key].is_string());
        }
    }
    let first = &results[0];
    assert_eq!(
        first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "usr/local/lib/python3.12/site-packages/jeIlyfish-0.5.1.dist-info/METADATA"
    );
    assert_eq!(first["properties"]["package"], "jeIlyfish");
    assert_eq!(first["properties"]["layer"]["index"], 2);
    let req = results
        .iter()
        .find(|x| x["properties"]["package"] == "reqeusts")
        .unwrap_or(&Value::Null);
    assert_eq!(
        req["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
    assert_eq!(req["level"], "warning");

    // The warning travels as a tool notification.
    let notes = arr(&run["invocations"][0], "toolExecutionNotifications");
    assert_eq!(notes.len(), 1);
    assert_eq!(run["originalUriBaseIds"]["ROOTPATH"]["uri"], "file:///");
}

#[test]
fn sarif_fingerprints_are_stable_across_runs_and_wording() {
    let a = support::incident_report();
    let mut b = a.clone();
    b.findings.reverse();
    for f in &mut b.findings {
        f.message.push_str(" (reworded)");
    }
    let prints = |r: &ScanReport| -> HashSet<String> {
        let v = parse(r, Format::Sarif);
        arr(&v["runs"][0], "results")
            .iter()
            .map(|x| s(&x["partialFingerprints"], "pywardFinding/v1").to_string())
            .collect()
    };
    assert_eq!(prints(&a), prints(&b));
    assert_eq!(
        render(&a, Format::Sarif, &PLAIN),
        render(&a, Format::Sarif, &PLAIN)
    );
}

#[test]
fn sarif_handles_missing_paths_and_hostile_uris() {
    let r = support::hostile_report();
    let v = parse(&r, Format::Sarif);
    let results = arr(&v["runs"][0], "results");
    let uris: Vec<&str> = results
        .iter()
        .map(|x| {
            s(
                &x["locations"][0]["physicalLocation"]["artifactLocation"],
                "uri",
            )
        })
        .collect();
    assert!(
        uris.contains(&"reqs%20dir/%C3%BCn%C3%AFcode%3F%23%25.txt"),
        "{uris:?}"
    );
    assert!(uris.contains(&"C%3Aweird/pyproject.toml"), "{uris:?}");
    // No path and an empty target name: still a usable URI.
    assert!(uris.contains(&"."), "{uris:?}");
    for x in results {
        assert!(x["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64() >= Some(1));
        assert!(!s(&x["message"], "text").is_empty());
    }
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|x| x.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["suppressions"][0]["kind"], "external");

    // A folder scan with relative paths: plain relative URIs; a single absolute file: file://.
    let mut c = support::clean_report(1);
    c.findings.push(
        pyward_core::Finding::new(
            "x.y",
            "g",
            "t",
            Action::Warn,
            pyward_core::Severity::Low,
            "m",
        )
        .for_package(&c.packages[0].clone()),
    );
    let v = parse(&c, Format::Sarif);
    let loc = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(
        loc["uri"],
        "lib/python3.12/site-packages/pkg0-1.0.dist-info/METADATA"
    );
    assert!(loc.get("uriBaseId").is_none());
    c.target.kind = pyward_core::TargetKind::File;
    c.findings[0].path = Some("/tmp/x/requirements.txt".into());
    let v = parse(&c, Format::Sarif);
    let loc = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(loc["uri"], "file:///tmp/x/requirements.txt");
}

// ---------------------------------------------------------------- cyclonedx

#[test]
fn cyclonedx_lists_components_and_malicious_findings() {
    let r = support::incident_report();
    let v = parse(&r, Format::CycloneDx);
    assert_eq!(s(&v, "bomFormat"), "CycloneDX");
    assert_eq!(s(&v, "specVersion"), "1.5");
    assert_eq!(v["version"], 1);
    let serial = s(&v, "serialNumber");
    let uuid = serial.strip_prefix("urn:uuid:").expect("urn:uuid serial");
    assert!(
        uuid::Uuid::parse_str(uuid).is_ok_and(|u| u.get_version_num() == 4),
        "{serial}"
    );
    assert_ne!(
        serial,
        s(&parse(&r, Format::CycloneDx), "serialNumber"),
        "fresh serial per BOM"
    );

    let md = &v["metadata"];
    assert_eq!(md["timestamp"], "2026-11-24T10:43:02Z");
    assert_eq!(md["tools"]["components"][0]["name"], "pyward");
    assert_eq!(md["tools"]["components"][0]["type"], "application");
    assert_eq!(md["component"]["type"], "container");
    assert_eq!(md["component"]["bom-ref"], "root");
    assert_eq!(md["component"]["name"], "incident1.tar");

    let comps = arr(&v, "components");
    assert_eq!(comps.len(), r.packages.len());
    let refs: Vec<&str> = comps.iter().map(|c| s(c, "bom-ref")).collect();
    assert_eq!(
        refs.iter().collect::<HashSet<_>>().len(),
        refs.len(),
        "unique bom-refs: {refs:?}"
    );
    assert!(refs.contains(&"pkg:pypi/six@1.16.0") && refs.contains(&"pkg:pypi/six@1.16.0#2"));
    for c in comps {
        assert_eq!(c["type"], "library");
        assert!(s(c, "purl").starts_with("pkg:pypi/"));
        let props = arr(c, "properties");
        let names: Vec<&str> = props.iter().map(|p| s(p, "name")).collect();
        assert!(names.contains(&"pyward:source") && names.contains(&"pyward:location:0:path"));
        assert!(names.contains(&"pyward:location:0:layer"), "{names:?}");
    }
    let jelly = comps
        .iter()
        .find(|c| c["name"] == "jeIlyfish")
        .unwrap_or(&Value::Null);
    assert_eq!(jelly["purl"], "pkg:pypi/jeilyfish@0.5.1");
    assert_eq!(jelly["version"], "0.5.1");

    let deps = arr(&v, "dependencies");
    assert_eq!(deps[0]["ref"], "root");
    let depends: Vec<&str> = arr(&deps[0], "dependsOn")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(depends, refs);

    // Known-malicious and typosquat findings with STOP/WARN; the file IOC finding is not one.
    let vulns = arr(&v, "vulnerabilities");
    assert_eq!(vulns.len(), 5);
    for vu in vulns {
        let aff = s(&vu["affects"][0], "ref");
        assert!(refs.contains(&aff), "{aff}");
        assert_eq!(vu["source"]["name"], "pyward");
        assert_eq!(vu["ratings"][0]["method"], "other");
        assert!(!s(vu, "description").is_empty());
    }
    let jelly_km = vulns
        .iter()
        .find(|x| x["id"] == "PYWARD-2019-0001")
        .expect("record id taken from the evidence");
    assert_eq!(jelly_km["affects"][0]["ref"], "pkg:pypi/jeilyfish@0.5.1");
    assert_eq!(jelly_km["ratings"][0]["severity"], "critical");
    assert_eq!(
        jelly_km["advisories"][0]["url"],
        "https://github.com/dateutil/dateutil/issues/984"
    );
    let props = arr(jelly_km, "properties");
    assert!(props.contains(&serde_json::json!({"name": "pyward:mitre", "value": "T1195.001"})));
    assert!(props.contains(&serde_json::json!({"name": "pyward:action", "value": "STOP"})));
    let warn = vulns
        .iter()
        .find(|x| x["affects"][0]["ref"] == "pkg:pypi/reqeusts@2.31.0");
    assert!(warn.is_some_and(|w| w["ratings"][0]["severity"] == "medium"));
}

#[test]
fn cyclonedx_clean_and_hostile_reports() {
    let v = parse(&support::clean_report(2), Format::CycloneDx);
    assert!(v.get("vulnerabilities").is_none());
    assert_eq!(v["metadata"]["component"]["type"], "application");

    let r = support::hostile_report();
    let v = parse(&r, Format::CycloneDx);
    assert!(
        v["metadata"].get("timestamp").is_none(),
        "a malformed time is left out"
    );
    // The allowlisted STOP is not a vulnerability, nor is the custom rule; the target-level
    // WARN affects the root.
    let vulns = arr(&v, "vulnerabilities");
    assert_eq!(vulns.len(), 1, "{vulns:?}");
    assert_eq!(vulns[0]["affects"][0]["ref"], "root");
    for vu in vulns {
        assert!(
            vu.get("advisories").is_none(),
            "URLs with spaces are not advisories"
        );
    }
    let comps = arr(&v, "components");
    assert!(
        comps.iter().all(|c| c.get("licenses").is_none()),
        "blank license left out"
    );
}

// ---------------------------------------------------------------- api

#[test]
fn write_report_writes_what_render_returns() {
    let r = support::incident_report();
    for f in [Format::Table, Format::Json, Format::Sarif] {
        let mut buf = Vec::new();
        write_report(&r, f, &PLAIN, &mut buf).expect("write to memory");
        assert_eq!(String::from_utf8(buf).ok(), Some(render(&r, f, &PLAIN)));
    }
}

#[test]
fn empty_report_renders_in_every_format() {
    let mut r = support::clean_report(0);
    r.target.name = String::new();
    for f in Format::ALL {
        let text = render(&r, f, &PLAIN);
        assert!(!text.is_empty());
        if f.is_machine_readable() {
            serde_json::from_str::<Value>(&text).expect("valid JSON");
        }
    }
    assert_eq!(
        render(&r, Format::Table, &PLAIN).lines().last(),
        Some("GO: no findings in 0 packages")
    );
}

#[test]
fn large_reports_render_in_near_linear_time() {
    // 20,000 packages, each with a finding: a quadratic grouping or lookup would take minutes.
    let mut r = support::clean_report(20_000);
    r.findings = r
        .packages
        .iter()
        .map(|p| {
            pyward_core::Finding::new(
                "names.typosquat",
                "names",
                "typosquat",
                Action::Warn,
                pyward_core::Severity::Medium,
                format!("{} imitates something", p.name),
            )
            .for_package(p)
        })
        .collect();
    r.decide();
    let start = std::time::Instant::now();
    for f in Format::ALL {
        let text = render(
            &r,
            f,
            &RenderOptions {
                color: false,
                verbose: true,
            },
        );
        assert!(text.contains("pkg19999"));
    }
    let took = start.elapsed();
    assert!(took.as_secs() < 20, "rendering took {took:?}");
    let v = parse(&r, Format::CycloneDx);
    assert_eq!(arr(&v, "vulnerabilities").len(), 20_000);
}
