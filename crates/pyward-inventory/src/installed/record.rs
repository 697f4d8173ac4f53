//! `RECORD` (wheel / pip): one CSV row per installed file, `path,algo=urlsafe-b64-digest,size`.

/// One row of a `RECORD` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    /// The path as written: relative to the folder holding the `.dist-info` (may climb with
    /// `../`), or absolute.
    pub path: String,
    /// `(algorithm, urlsafe base64 digest without padding)`, e.g. `("sha256", "…")`; absent for
    /// RECORD itself and for `.pyc` files written after installation.
    pub hash: Option<(String, String)>,
    pub size: Option<u64>,
}

/// Parse a `RECORD` strictly: any malformed row is an error naming its line, so a policy that
/// verifies hashes never works from a half-read RECORD.
pub fn parse_record(bytes: &[u8]) -> Result<Vec<RecordEntry>, String> {
    let (entries, problems) = parse_record_lenient(bytes);
    match problems.into_iter().next() {
        Some(p) => Err(p),
        None => Ok(entries),
    }
}

/// Parse a `RECORD`, keeping every row that names a path and describing each problem (bad CSV,
/// invalid UTF-8, a hash without `algo=`, a size that is not a number).
pub(crate) fn parse_record_lenient(bytes: &[u8]) -> (Vec<RecordEntry>, Vec<String>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut row = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                problems.push(format!("line {line}: not valid CSV ({e})"));
                // A CSV error leaves the reader in an unknown state: stop here.
                break;
            }
        }
        let field = |i: usize| -> Result<&str, String> {
            let raw = row.get(i).unwrap_or_default();
            std::str::from_utf8(raw).map_err(|_| format!("line {line}: invalid UTF-8"))
        };
        let path = match field(0) {
            Ok(p) => p.to_string(),
            Err(e) => {
                problems.push(e);
                String::from_utf8_lossy(row.get(0).unwrap_or_default()).into_owned()
            }
        };
        if path.trim().is_empty() {
            if row.iter().any(|f| !f.is_empty()) {
                problems.push(format!("line {line}: row without a path"));
            }
            continue;
        }
        if row.len() > 3 {
            problems.push(format!("line {line}: {} fields, expected 3", row.len()));
        }
        let hash = match field(1) {
            Ok("") => None,
            Ok(h) => match h.split_once('=') {
                Some((algo, digest)) if !algo.is_empty() && !digest.is_empty() => {
                    Some((algo.to_string(), digest.to_string()))
                }
                _ => {
                    problems.push(format!("line {line}: hash `{h}` is not `algorithm=digest`"));
                    None
                }
            },
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let size = match field(2) {
            Ok("") => None,
            Ok(s) => match s.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(format!("line {line}: size `{s}` is not a number"));
                    None
                }
            },
            Err(e) => {
                problems.push(e);
                None
            }
        };
        entries.push(RecordEntry { path, hash, size });
    }
    (entries, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows() {
        let rec = b"six.py,sha256=abc_-,34549\n\"we,ird.py\",sha256=x,1\nsix-1.dist-info/RECORD,,\n../../../bin/x,,\n";
        let e = parse_record(rec).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].path, "six.py");
        assert_eq!(e[0].hash, Some(("sha256".into(), "abc_-".into())));
        assert_eq!(e[0].size, Some(34549));
        assert_eq!(e[1].path, "we,ird.py");
        assert_eq!(e[2].hash, None);
        assert_eq!(e[2].size, None);
        assert_eq!(e[3].path, "../../../bin/x");
    }

    #[test]
    fn reports_bad_rows() {
        assert!(parse_record(b"a.py,sha256=x,12\n").is_ok());
        let err = parse_record(b"a.py,sha256=x,12\nb.py,nohash,3\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_record(b"a.py,sha256=x,big\n")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_record(b"a\xff.py,,\n").unwrap_err().contains("UTF-8"));
        assert!(parse_record(b"a.py,,,extra\n").is_err());
        // Lenient parsing keeps what it can.
        let (entries, problems) = parse_record_lenient(b"a\xff.py,,\nb.py,x,y\nc.py,,\n");
        assert_eq!(entries.len(), 3);
        assert_eq!(problems.len(), 3);
        assert_eq!(entries[0].path, "a\u{fffd}.py");
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(parse_record(b"").unwrap(), vec![]);
        assert_eq!(parse_record(b"\n\n").unwrap(), vec![]);
    }
}
