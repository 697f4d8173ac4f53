//! Core metadata (`METADATA`, `PKG-INFO`): an RFC 822-style header block, read tolerantly.

/// The fields of core metadata pyward uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: Option<String>,
    pub summary: Option<String>,
    pub license: Option<String>,
    pub author: Option<String>,
    pub home_page: Option<String>,
    pub requires_dist: Vec<String>,
}

/// Parse a METADATA / PKG-INFO header block. Stops at the first blank line (the description
/// body); joins continuation lines; accepts invalid UTF-8 (replaced). Fails only when there is no
/// `Name:` header, which means the file is not core metadata.
pub fn parse_core_metadata(bytes: &[u8]) -> Result<CoreMetadata, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut md = CoreMetadata::default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation of the previous header (multi-line License, Description...).
            if let Some((_, v)) = headers.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        // A line without a colon in the header block is ignored (syft #327: don't abort).
    }
    let mut license_expression = None;
    for (k, v) in headers {
        let value = || if v.is_empty() { None } else { Some(v.clone()) };
        match k.as_str() {
            "name" if md.name.is_empty() => md.name = v.clone(),
            "version" if md.version.is_none() => md.version = value(),
            "summary" if md.summary.is_none() => md.summary = value(),
            "license" if md.license.is_none() => md.license = value(),
            "license-expression" => license_expression = value(),
            "author" if md.author.is_none() => md.author = value(),
            "author-email" if md.author.is_none() => md.author = value(),
            "home-page" if md.home_page.is_none() => md.home_page = value(),
            "requires-dist" if !v.is_empty() => md.requires_dist.push(v.clone()),
            _ => {}
        }
    }
    if license_expression.is_some() {
        md.license = license_expression;
    }
    if md.name.is_empty() {
        return Err("no `Name:` header; not a core metadata file".into());
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_until_body() {
        let md = parse_core_metadata(
            b"Metadata-Version: 2.1\nName: jeIlyfish\nVersion: 0.5.1\nRequires-Dist: a>=1\nRequires-Dist: b ; extra == 'x'\nLicense: line one\n  line two\n\nName: ignored body\n",
        )
        .unwrap();
        assert_eq!(md.name, "jeIlyfish");
        assert_eq!(md.version.as_deref(), Some("0.5.1"));
        assert_eq!(md.requires_dist, vec!["a>=1", "b ; extra == 'x'"]);
        assert_eq!(md.license.as_deref(), Some("line one\nline two"));
    }

    #[test]
    fn tolerates_garbage() {
        assert!(parse_core_metadata(b"\xff\xfe garbage").is_err());
        let md = parse_core_metadata(b"Name: x\xff\nVersion: 1\nbad line\n").unwrap();
        assert_eq!(md.name, "x\u{fffd}");
    }
}
