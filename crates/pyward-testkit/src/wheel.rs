//! Wheels and sdists for tests. They hold only the files the test gives them; nothing in them runs
//! at install time (wheels have no install hooks).

use anyhow::Result;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A pure-Python wheel to build.
#[derive(Debug, Clone, Default)]
pub struct WheelSpec {
    /// Project name as written in METADATA (`jeIlyfish`).
    pub name: String,
    pub version: String,
    /// `Requires-Dist` lines.
    pub requires: Vec<String>,
    pub summary: Option<String>,
    /// Files to ship, path relative to site-packages → content.
    pub files: Vec<(String, Vec<u8>)>,
}

impl WheelSpec {
    pub fn new(name: &str, version: &str) -> Self {
        WheelSpec {
            name: name.into(),
            version: version.into(),
            ..Default::default()
        }
    }

    pub fn requires(mut self, req: &str) -> Self {
        self.requires.push(req.into());
        self
    }

    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.into(), content.into()));
        self
    }

    /// Name part of dist-info folder and wheel file: normalised, `-` → `_` (keeps case, as
    /// older tools did and as the incident's packages were published).
    pub fn dist_name(&self) -> String {
        self.name.replace(['-', '.'], "_")
    }

    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.dist_name(), self.version)
    }

    pub fn file_name(&self) -> String {
        format!("{}-{}-py3-none-any.whl", self.dist_name(), self.version)
    }

    pub fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(s) = &self.summary {
            m.push_str(&format!("Summary: {s}\n"));
        }
        for r in &self.requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m.push_str("\nInert test package built by pyward-testkit.\n");
        m
    }

    /// The wheel's bytes: the files, then METADATA, WHEEL, top_level.txt and RECORD.
    pub fn build(&self) -> Result<Vec<u8>> {
        let di = self.dist_info();
        let mut members: Vec<(String, Vec<u8>)> = self.files.clone();
        members.push((format!("{di}/METADATA"), self.metadata().into_bytes()));
        members.push((
            format!("{di}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: pyward-testkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_vec(),
        ));
        let mut tops: Vec<String> = self
            .files
            .iter()
            .filter_map(|(p, _)| {
                p.split('/')
                    .next()
                    .map(|t| t.trim_end_matches(".py").to_string())
            })
            .collect();
        tops.sort();
        tops.dedup();
        members.push((
            format!("{di}/top_level.txt"),
            format!("{}\n", tops.join("\n")).into_bytes(),
        ));
        let mut record = String::new();
        for (p, c) in &members {
            record.push_str(&format!("{p},sha256={},{}\n", record_hash(c), c.len()));
        }
        record.push_str(&format!("{di}/RECORD,,\n"));
        members.push((format!("{di}/RECORD"), record.into_bytes()));

        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (p, c) in &members {
                zip.start_file(p.as_str(), opts)?;
                zip.write_all(c)?;
            }
            zip.finish()?;
        }
        Ok(buf.into_inner())
    }

    /// Write the wheel into `dir` under its standard file name.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file_name());
        std::fs::write(&path, self.build()?)?;
        Ok(path)
    }

    /// An sdist (`name-version.tar.gz`) holding `PKG-INFO`, the files and a `setup.py` that only
    /// calls `setup()` with static arguments. Tests never build or install it.
    pub fn write_sdist_to(&self, dir: &Path) -> Result<PathBuf> {
        let base = format!("{}-{}", self.dist_name(), self.version);
        let path = dir.join(format!("{base}.tar.gz"));
        let f = std::fs::File::create(&path)?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut add = |p: &str, c: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(c.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_600_000_000);
            h.set_cksum();
            tar.append_data(&mut h, format!("{base}/{p}"), c)?;
            Ok(())
        };
        add("PKG-INFO", self.metadata().as_bytes())?;
        for (p, c) in &self.files {
            add(p, c)?;
        }
        let setup = format!(
            "from setuptools import setup\nsetup(name={:?}, version={:?}, install_requires={:?})\n",
            self.name, self.version, self.requires
        );
        add("setup.py", setup.as_bytes())?;
        tar.into_inner()?.finish()?;
        Ok(path)
    }
}

/// RECORD's hash form: urlsafe base64 of the SHA-256, without padding.
pub fn record_hash(content: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(content))
}

/// Write a PEP 503 "simple" index for the wheels in `dir` into `dir/simple`, so that
/// `pip --index-url file://DIR/simple` resolves them offline.
pub fn write_simple_index(dir: &Path, wheels: &[&WheelSpec]) -> Result<PathBuf> {
    let simple = dir.join("simple");
    std::fs::create_dir_all(&simple)?;
    let mut root = String::from("<!DOCTYPE html><html><body>\n");
    let mut by_project: std::collections::BTreeMap<String, Vec<&WheelSpec>> = Default::default();
    for w in wheels {
        by_project.entry(normalize(&w.name)).or_default().push(w);
    }
    for (project, ws) in by_project {
        root.push_str(&format!("<a href=\"{project}/\">{project}</a>\n"));
        let pdir = simple.join(&project);
        std::fs::create_dir_all(&pdir)?;
        let mut page = String::from("<!DOCTYPE html><html><body>\n");
        for w in ws {
            let wheel = w.write_to(&pdir)?;
            let bytes = std::fs::read(&wheel)?;
            page.push_str(&format!(
                "<a href=\"{f}#sha256={h}\">{f}</a>\n",
                f = w.file_name(),
                h = hex::encode(Sha256::digest(&bytes))
            ));
        }
        page.push_str("</body></html>\n");
        std::fs::write(pdir.join("index.html"), page)?;
    }
    root.push_str("</body></html>\n");
    std::fs::write(simple.join("index.html"), root)?;
    Ok(simple)
}

fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !sep {
                out.push('-');
            }
            sep = true;
        } else {
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The two packages of incident 1, inert: `jeIlyfish` whose `_jellyfish.py` only defines a
/// harmless function and carries the original IOC strings as comments-free data, and
/// `python3-dateutil` that depends on it.
pub fn incident1_wheels() -> (WheelSpec, WheelSpec) {
    let jeilyfish = WheelSpec::new("jeIlyfish", "0.5.1")
        .file(
            "jeIlyfish/__init__.py",
            "from jeIlyfish._jellyfish import *\n",
        )
        .file(
            "jeIlyfish/_jellyfish.py",
            "# Inert stand-in for the malicious module of the 2019 jeIlyfish typosquat.\n\
             # It defines the library's API and does nothing else; no network, no file access.\n\
             def jaro_distance(a, b):\n    return 0.0\n",
        );
    let dateutil = WheelSpec::new("python3-dateutil", "2.8.1")
        .requires("jeIlyfish")
        .file("dateutil/__init__.py", "__version__ = '2.8.1'\n");
    (jeilyfish, dateutil)
}
