//! Container images for tests: docker-archive (`docker save` layout, legacy or Docker 25+),
//! OCI image layout folders and OCI archives, built from layers of tar entries.
//!
//! Layers are written straight to disk while their digests are computed, so a test or a
//! benchmark can build an image of any size: a layer's entries come from a list held in memory,
//! from a folder on disk, or from a generator closure that writes them one by one.
//! Hostile entries (`../` paths, absolute paths, invalid UTF-8 names) can be written raw.
//! Everything is deterministic (mtime 0), so two writes of the same image give the same digests.

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The result type of builder callbacks ([`Layer::generated`]), for crates without anyhow.
pub use anyhow::Result as BuildResult;

/// OCI media types written by the builder.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain tar (what legacy `docker save` writes).
    None,
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Writes tar entries of one layer. Paths are relative to the image root (`usr/lib/x.py`); a
/// leading `/` is dropped. Checked methods refuse `..`; use [`LayerWriter::raw`] for hostile
/// names.
pub struct LayerWriter<'a> {
    tar: tar::Builder<&'a mut dyn Write>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

impl LayerWriter<'_> {
    /// A regular file, mode 0644.
    pub fn file(&mut self, path: &str, content: &[u8]) -> Result<()> {
        self.file_mode(path, content, 0o644)
    }

    /// A regular file with the given permission bits (setuid etc. included).
    pub fn file_mode(&mut self, path: &str, content: &[u8], mode: u32) -> Result<()> {
        self.file_from_reader(path, content.len() as u64, content, mode)
    }

    /// A regular file of `size` bytes streamed from `reader` (for big files).
    pub fn file_from_reader(
        &mut self,
        path: &str,
        size: u64,
        reader: impl Read,
        mode: u32,
    ) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, mode, size);
        self.tar
            .append_data(&mut h, rel(path), reader)
            .with_context(|| format!("adding {path}"))
    }

    pub fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.tar
            .append_data(&mut h, rel(path), io::empty())
            .with_context(|| format!("adding {path}"))
    }

    /// A symlink; the target is stored as given (may be absolute or climb with `..`).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.tar
            .append_link(&mut h, rel(path), target)
            .with_context(|| format!("adding {path}"))
    }

    /// A hard link to another path of the layer (`target` relative to the root, as tar does).
    pub fn hardlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.tar
            .append_link(&mut h, rel(path), target)
            .with_context(|| format!("adding {path}"))
    }

    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) -> Result<()> {
        let mut h = header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        self.tar
            .append_data(&mut h, rel(path), io::empty())
            .with_context(|| format!("adding {path}"))
    }

    pub fn fifo(&mut self, path: &str) -> Result<()> {
        let mut h = header(tar::EntryType::Fifo, 0o644, 0);
        self.tar
            .append_data(&mut h, rel(path), io::empty())
            .with_context(|| format!("adding {path}"))
    }

    /// Delete `path` of lower layers: writes `<dir>/.wh.<name>`.
    pub fn whiteout(&mut self, path: &str) -> Result<()> {
        let path = rel(path);
        let wh = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.file(&wh, b"")
    }

    /// Hide all lower-layer contents of `dir`: writes `<dir>/.wh..wh..opq`.
    pub fn opaque(&mut self, dir: &str) -> Result<()> {
        let dir = rel(dir).trim_end_matches('/');
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// An entry whose name bytes (at most 100) are written into the header unchecked: `../x`,
    /// `/etc/x`, invalid UTF-8. `link` is the raw link target for symlinks and hard links.
    pub fn raw(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        content: &[u8],
        link: Option<&[u8]>,
    ) -> Result<()> {
        let mut h = header(kind, 0o644, content.len() as u64);
        let old = h.as_old_mut();
        if name.len() > old.name.len() {
            bail!("raw entry names are limited to 100 bytes");
        }
        old.name[..name.len()].copy_from_slice(name);
        if let Some(link) = link {
            if link.len() > old.linkname.len() {
                bail!("raw link names are limited to 100 bytes");
            }
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        self.tar.append(&h, content)?;
        Ok(())
    }

    /// Every file, folder and symlink under `dir` on disk, placed under `prefix` in the layer,
    /// streamed (file contents are never held in memory).
    pub fn dir_from_disk(&mut self, prefix: &str, dir: &Path) -> Result<()> {
        self.tar.follow_symlinks(false);
        self.tar.mode(tar::HeaderMode::Deterministic);
        let prefix = rel(prefix);
        let name = if prefix.is_empty() { "." } else { prefix };
        self.tar
            .append_dir_all(name, dir)
            .with_context(|| format!("adding folder {}", dir.display()))
    }

    /// An installed pure-Python distribution under `site_packages`: `<name>-<ver>.dist-info`
    /// with METADATA, RECORD and INSTALLER, plus the given files (path relative to
    /// site-packages → content).
    pub fn dist_info(
        &mut self,
        site_packages: &str,
        name: &str,
        version: &str,
        files: &[(&str, &[u8])],
    ) -> Result<()> {
        let sp = rel(site_packages).trim_end_matches('/');
        let dist = format!("{}-{version}.dist-info", name.replace(['-', '.'], "_"));
        let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n");
        let mut record = String::new();
        for (p, content) in files {
            self.file(&format!("{sp}/{p}"), content)?;
            record.push_str(&format!(
                "{p},sha256={},{}\n",
                crate::wheel::record_hash(content),
                content.len()
            ));
        }
        self.file(&format!("{sp}/{dist}/METADATA"), metadata.as_bytes())?;
        self.file(&format!("{sp}/{dist}/INSTALLER"), b"pip\n")?;
        record.push_str(&format!(
            "{dist}/METADATA,sha256={},{}\n{dist}/INSTALLER,,\n{dist}/RECORD,,\n",
            crate::wheel::record_hash(metadata.as_bytes()),
            metadata.len()
        ));
        self.file(&format!("{sp}/{dist}/RECORD"), record.as_bytes())
    }
}

/// A function that writes a layer's entries one at a time (for layers too big for memory).
pub type LayerGenerator = Arc<dyn Fn(&mut LayerWriter<'_>) -> Result<()> + Send + Sync>;

#[derive(Clone)]
enum Item {
    File {
        path: String,
        content: Vec<u8>,
        mode: u32,
    },
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
    CharDevice(String, u32, u32),
    Fifo(String),
    Whiteout(String),
    Opaque(String),
    Raw {
        name: Vec<u8>,
        kind: tar::EntryType,
        content: Vec<u8>,
        link: Option<Vec<u8>>,
    },
    Disk(String, PathBuf),
    Generated(LayerGenerator),
}

/// One image layer: tar entries in order, a compression, and the history step that made it.
#[derive(Clone, Default)]
pub struct Layer {
    items: Vec<Item>,
    pub compression: Compression,
    pub created_by: Option<String>,
}

impl Layer {
    /// An empty gzip layer.
    pub fn new() -> Self {
        Layer::default()
    }

    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// `history[].created_by` of this layer, e.g. `/bin/sh -c pip install six`.
    pub fn created_by(mut self, cmd: &str) -> Self {
        self.created_by = Some(cmd.into());
        self
    }

    pub fn file(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.file_mode(path, content, 0o644)
    }

    pub fn file_mode(mut self, path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.items.push(Item::File {
            path: path.into(),
            content: content.into(),
            mode,
        });
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        self.items.push(Item::Dir(path.into()));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.items.push(Item::Symlink(path.into(), target.into()));
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.items.push(Item::Hardlink(path.into(), target.into()));
        self
    }

    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        self.items.push(Item::CharDevice(path.into(), major, minor));
        self
    }

    pub fn fifo(mut self, path: &str) -> Self {
        self.items.push(Item::Fifo(path.into()));
        self
    }

    /// `.wh.<name>`: deletes `path` (and everything under it) from lower layers.
    pub fn whiteout(mut self, path: &str) -> Self {
        self.items.push(Item::Whiteout(path.into()));
        self
    }

    /// `.wh..wh..opq`: hides all lower-layer contents of `dir`.
    pub fn opaque(mut self, dir: &str) -> Self {
        self.items.push(Item::Opaque(dir.into()));
        self
    }

    /// A raw regular-file entry with an unchecked name (`../../etc/x`, `/abs`, invalid UTF-8).
    pub fn raw_file(mut self, name: &[u8], content: impl Into<Vec<u8>>) -> Self {
        self.items.push(Item::Raw {
            name: name.to_vec(),
            kind: tar::EntryType::Regular,
            content: content.into(),
            link: None,
        });
        self
    }

    /// A raw entry of any type with unchecked name and link bytes.
    pub fn raw(
        mut self,
        name: &[u8],
        kind: tar::EntryType,
        content: impl Into<Vec<u8>>,
        link: Option<&[u8]>,
    ) -> Self {
        self.items.push(Item::Raw {
            name: name.to_vec(),
            kind,
            content: content.into(),
            link: link.map(<[u8]>::to_vec),
        });
        self
    }

    /// The contents of a folder on disk, under `prefix`, streamed when the layer is written.
    pub fn from_disk(mut self, prefix: &str, dir: impl Into<PathBuf>) -> Self {
        self.items.push(Item::Disk(prefix.into(), dir.into()));
        self
    }

    /// Entries written by `f` when the layer is written (streamed, never held in memory).
    pub fn generated(
        mut self,
        f: impl Fn(&mut LayerWriter<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.items.push(Item::Generated(Arc::new(f)));
        self
    }

    /// The layer as an uncompressed tar, into `out`.
    pub fn write_tar(&self, out: &mut dyn Write) -> Result<()> {
        let mut w = LayerWriter {
            tar: tar::Builder::new(out),
        };
        for item in &self.items {
            match item {
                Item::File {
                    path,
                    content,
                    mode,
                } => w.file_mode(path, content, *mode)?,
                Item::Dir(p) => w.dir(p)?,
                Item::Symlink(p, t) => w.symlink(p, t)?,
                Item::Hardlink(p, t) => w.hardlink(p, t)?,
                Item::CharDevice(p, ma, mi) => w.char_device(p, *ma, *mi)?,
                Item::Fifo(p) => w.fifo(p)?,
                Item::Whiteout(p) => w.whiteout(p)?,
                Item::Opaque(p) => w.opaque(p)?,
                Item::Raw {
                    name,
                    kind,
                    content,
                    link,
                } => w.raw(name, *kind, content, link.as_deref())?,
                Item::Disk(prefix, dir) => w.dir_from_disk(prefix, dir)?,
                Item::Generated(f) => f(&mut w)?,
            }
        }
        w.tar.finish()?;
        Ok(())
    }

    /// The layer tar, compressed as configured, in memory (small layers, unit tests).
    pub fn to_blob(&self) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("blob");
        let mut f = File::create(&path)?;
        write_layer_blob(self, &mut f, dir.path())?;
        drop(f);
        Ok(fs::read(path)?)
    }
}

/// A writer that hashes and counts what goes through it.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hash_writer<W: Write>(inner: W) -> HashWriter<W> {
    HashWriter {
        inner,
        hash: Sha256::new(),
        count: 0,
    }
}

fn digest_of(hash: Sha256) -> String {
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Digest and size of a written blob, plus the uncompressed digest for layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// `sha256:<hex>` of the blob as stored.
    pub digest: String,
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed layer tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub media_type: String,
}

/// Write a layer blob into `out`; `scratch` holds a temporary file for zstd.
fn write_layer_blob(layer: &Layer, out: &mut dyn Write, scratch: &Path) -> Result<BlobInfo> {
    let mut outer = hash_writer(BufWriter::with_capacity(1 << 20, out));
    let diff_id = match layer.compression {
        Compression::None => {
            let mut inner = hash_writer(&mut outer);
            layer.write_tar(&mut inner)?;
            digest_of(inner.hash)
        }
        Compression::Gzip => {
            let mut gz = GzEncoder::new(&mut outer, flate2::Compression::fast());
            let d = {
                let mut inner = hash_writer(&mut gz);
                layer.write_tar(&mut inner)?;
                digest_of(inner.hash)
            };
            gz.finish()?;
            d
        }
        Compression::Zstd => {
            // ruzstd's encoder pulls from a reader: stage the tar in a scratch file.
            let tmp_path = scratch.join(format!("zstd-stage-{}", std::process::id()));
            let mut tmp = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp_path)?;
            let d = {
                let mut inner = hash_writer(BufWriter::new(&mut tmp));
                layer.write_tar(&mut inner)?;
                inner.flush()?;
                digest_of(inner.hash)
            };
            tmp.seek(SeekFrom::Start(0))?;
            ruzstd::encoding::compress(
                io::BufReader::new(&mut tmp),
                &mut outer,
                ruzstd::encoding::CompressionLevel::Fastest,
            );
            drop(tmp);
            let _ = fs::remove_file(&tmp_path);
            d
        }
    };
    outer.flush()?;
    Ok(BlobInfo {
        digest: digest_of(outer.hash),
        size: outer.count,
        diff_id,
        media_type: layer.compression.media_type().into(),
    })
}

/// One build step: a layer, or a history entry without a layer (`ENV`, `CMD`...).
#[derive(Clone)]
enum Step {
    Layer(Layer),
    Empty(String),
}

/// A container image to write.
#[derive(Clone)]
pub struct ImageBuilder {
    steps: Vec<Step>,
    pub repo_tags: Vec<String>,
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub os: String,
    pub architecture: String,
    /// Set `history[].comment` to `buildkit.dockerfile.v0` on every entry.
    pub buildkit: bool,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder {
            steps: Vec::new(),
            repo_tags: Vec::new(),
            user: None,
            exposed_ports: Vec::new(),
            env: Vec::new(),
            entrypoint: None,
            cmd: None,
            labels: BTreeMap::new(),
            os: "linux".into(),
            architecture: "amd64".into(),
            buildkit: false,
        }
    }
}

/// Layout of a `docker save` tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerLayout {
    /// `<id>/layer.tar`, `<config hex>.json`, `manifest.json`, `repositories` (Docker < 25).
    #[default]
    Legacy,
    /// Docker 25+: `blobs/sha256/...`, `index.json`, `oci-layout` and `manifest.json`.
    Blobs,
}

/// Tweaks of how an archive is written, to make broken ones in tests.
#[derive(Debug, Clone, Default)]
pub struct ArchiveOptions {
    pub docker_layout: DockerLayout,
    /// Gzip the whole tarball (`docker save | gzip`).
    pub gzip: bool,
    /// Member names to leave out (a missing blob).
    pub omit_members: Vec<String>,
    /// Member name → bytes written instead of the real content (malformed JSON, tampered blob).
    pub replace_members: Vec<(String, Vec<u8>)>,
}

/// What was written: digests and member names, so tests can check what a reader reports.
#[derive(Debug, Clone, Default)]
pub struct WrittenImage {
    pub config_digest: String,
    pub manifest_digest: String,
    pub layers: Vec<BlobInfo>,
    /// Member names of the layers in the archive, bottom first.
    pub layer_members: Vec<String>,
    /// Member name of the config.
    pub config_member: String,
}

/// An image's blobs written into a scratch `blobs/sha256` folder.
struct Staged {
    written: WrittenImage,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImageBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn tag(mut self, tag: &str) -> Self {
        self.repo_tags.push(tag.into());
        self
    }

    pub fn layer(mut self, layer: Layer) -> Self {
        self.steps.push(Step::Layer(layer));
        self
    }

    /// A history entry with `empty_layer: true` (e.g. `/bin/sh -c #(nop)  CMD ["sh"]`).
    pub fn empty_step(mut self, created_by: &str) -> Self {
        self.steps.push(Step::Empty(created_by.into()));
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn expose(mut self, port: &str) -> Self {
        self.exposed_ports.push(port.into());
        self
    }

    pub fn env(mut self, kv: &str) -> Self {
        self.env.push(kv.into());
        self
    }

    pub fn entrypoint(mut self, args: &[&str]) -> Self {
        self.entrypoint = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn cmd(mut self, args: &[&str]) -> Self {
        self.cmd = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.steps.iter().filter_map(|s| match s {
            Step::Layer(l) => Some(l),
            Step::Empty(_) => None,
        })
    }

    /// The image config JSON for the given layer diff ids.
    pub fn config_json(&self, diff_ids: &[String]) -> Value {
        let history: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let (created_by, empty) = match s {
                    Step::Layer(l) => (l.created_by.clone().unwrap_or_default(), false),
                    Step::Empty(c) => (c.clone(), true),
                };
                let mut h = json!({ "created": "1970-01-01T00:00:00Z", "created_by": created_by });
                if empty {
                    h["empty_layer"] = json!(true);
                }
                if self.buildkit {
                    h["comment"] = json!("buildkit.dockerfile.v0");
                }
                h
            })
            .collect();
        let ports: serde_json::Map<String, Value> = self
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        let mut config = json!({
            "Env": self.env,
            "Labels": self.labels,
        });
        if let Some(u) = &self.user {
            config["User"] = json!(u);
        }
        if !ports.is_empty() {
            config["ExposedPorts"] = Value::Object(ports);
        }
        if let Some(e) = &self.entrypoint {
            config["Entrypoint"] = json!(e);
        }
        if let Some(c) = &self.cmd {
            config["Cmd"] = json!(c);
        }
        json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": "1970-01-01T00:00:00Z",
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        })
    }

    /// Write every blob into `<root>/blobs/sha256/`.
    fn stage(&self, root: &Path) -> Result<Staged> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs)?;
        let mut layers = Vec::new();
        for (i, layer) in self.layers().enumerate() {
            let tmp = blobs.join(format!("layer-{i}.tmp"));
            let mut f = File::create(&tmp)?;
            let info = write_layer_blob(layer, &mut f, root)?;
            drop(f);
            fs::rename(&tmp, blobs.join(hex_of(&info.digest)))?;
            layers.push(info);
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config = serde_json::to_vec(&self.config_json(&diff_ids))?;
        let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
        fs::write(blobs.join(hex_of(&config_digest)), &config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": { "mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config.len() },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.size,
            })).collect::<Vec<_>>(),
        }))?;
        let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
        fs::write(blobs.join(hex_of(&manifest_digest)), &manifest)?;
        Ok(Staged {
            written: WrittenImage {
                config_member: format!("blobs/sha256/{}", hex_of(&config_digest)),
                layer_members: layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", hex_of(&l.digest)))
                    .collect(),
                config_digest,
                manifest_digest,
                layers,
            },
            config,
            manifest,
        })
    }

    fn index_entry(&self, staged: &Staged) -> Value {
        let mut d = json!({
            "mediaType": MEDIA_MANIFEST,
            "digest": staged.written.manifest_digest,
            "size": staged.manifest.len(),
            "platform": { "architecture": self.architecture, "os": self.os },
        });
        if let Some(tag) = self.repo_tags.first() {
            d["annotations"] = json!({
                "io.containerd.image.name": tag,
                "org.opencontainers.image.ref.name": tag.rsplit_once(':').map_or(tag.as_str(), |(_, t)| t),
            });
        }
        d
    }

    /// An OCI image layout folder (`oci-layout`, `index.json`, `blobs/sha256/`).
    pub fn write_oci_layout(&self, dir: &Path) -> Result<WrittenImage> {
        write_oci_layout_many(&[self], dir).map(|mut v| v.remove(0))
    }

    /// An OCI layout as a tarball.
    pub fn write_oci_archive(&self, path: &Path) -> Result<WrittenImage> {
        self.write_oci_archive_with(path, &ArchiveOptions::default())
    }

    pub fn write_oci_archive_with(
        &self,
        path: &Path,
        opts: &ArchiveOptions,
    ) -> Result<WrittenImage> {
        let scratch = scratch_dir(path)?;
        let mut written = write_oci_layout_many(&[self], scratch.path())?;
        let mut w = ArchiveWriter::create(path, opts)?;
        w.add_bytes("oci-layout", &fs::read(scratch.path().join("oci-layout"))?)?;
        w.add_bytes("index.json", &fs::read(scratch.path().join("index.json"))?)?;
        let mut names: Vec<_> = fs::read_dir(scratch.path().join("blobs/sha256"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            w.add_file(
                &format!("blobs/sha256/{n}"),
                &scratch.path().join("blobs/sha256").join(&n),
            )?;
        }
        w.finish()?;
        Ok(written.remove(0))
    }

    /// A `docker save` tarball (legacy layout).
    pub fn write_docker_archive(&self, path: &Path) -> Result<WrittenImage> {
        self.write_docker_archive_with(path, &ArchiveOptions::default())
    }

    pub fn write_docker_archive_with(
        &self,
        path: &Path,
        opts: &ArchiveOptions,
    ) -> Result<WrittenImage> {
        write_docker_archive_many(&[self], path, opts).map(|mut v| v.remove(0))
    }
}

fn scratch_dir(near: &Path) -> Result<tempfile::TempDir> {
    let parent = near
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(tempfile::tempdir_in(parent)?)
}

/// Several images in one OCI layout folder (one `index.json` entry each).
pub fn write_oci_layout_many(images: &[&ImageBuilder], dir: &Path) -> Result<Vec<WrittenImage>> {
    fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let mut manifests = Vec::new();
    for img in images {
        let staged = img.stage(dir)?;
        manifests.push(img.index_entry(&staged));
        out.push(staged.written);
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(out)
}

/// Several images in one `docker save` tarball (one `manifest.json` entry each).
pub fn write_docker_archive_many(
    images: &[&ImageBuilder],
    path: &Path,
    opts: &ArchiveOptions,
) -> Result<Vec<WrittenImage>> {
    let scratch = scratch_dir(path)?;
    let mut w = ArchiveWriter::create(path, opts)?;
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    let mut out = Vec::new();
    let mut repositories = serde_json::Map::new();
    let mut done = std::collections::HashSet::new();
    for img in images {
        let staged = img.stage(scratch.path())?;
        let blobs = scratch.path().join("blobs/sha256");
        let mut written = staged.written.clone();
        match opts.docker_layout {
            DockerLayout::Legacy => {
                let cfg_hex = hex_of(&written.config_digest).to_string();
                written.config_member = format!("{cfg_hex}.json");
                written.layer_members.clear();
                for l in &written.layers {
                    // Legacy layer folders are named after a v1 id; the diff id serves here.
                    let member = format!("{}/layer.tar", hex_of(&l.diff_id));
                    if done.insert(member.clone()) {
                        w.add_file(&member, &blobs.join(hex_of(&l.digest)))?;
                    }
                    written.layer_members.push(member);
                }
                if done.insert(written.config_member.clone()) {
                    w.add_bytes(&written.config_member, &staged.config)?;
                }
            }
            DockerLayout::Blobs => {
                let mut names = vec![
                    hex_of(&written.config_digest).to_string(),
                    hex_of(&written.manifest_digest).to_string(),
                ];
                names.extend(written.layers.iter().map(|l| hex_of(&l.digest).to_string()));
                for n in names {
                    let member = format!("blobs/sha256/{n}");
                    if done.insert(member.clone()) {
                        w.add_file(&member, &blobs.join(&n))?;
                    }
                }
                index.push(img.index_entry(&staged));
            }
        }
        manifest.push(json!({
            "Config": written.config_member,
            "RepoTags": img.repo_tags,
            "Layers": written.layer_members,
        }));
        if let (Some(tag), Some(last)) = (img.repo_tags.first(), written.layers.last()) {
            if let Some((repo, t)) = tag.rsplit_once(':') {
                repositories.insert(repo.into(), json!({ t: hex_of(&last.diff_id) }));
            }
        }
        out.push(written);
    }
    if opts.docker_layout == DockerLayout::Blobs {
        w.add_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        w.add_bytes(
            "index.json",
            &serde_json::to_vec(
                &json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index }),
            )?,
        )?;
    }
    w.add_bytes("manifest.json", &serde_json::to_vec(&manifest)?)?;
    if !repositories.is_empty() {
        w.add_bytes(
            "repositories",
            &serde_json::to_vec(&Value::Object(repositories))?,
        )?;
    }
    w.finish()?;
    Ok(out)
}

/// The outer tarball of an archive, honouring [`ArchiveOptions`].
struct ArchiveWriter<'o> {
    tar: tar::Builder<Box<dyn Write>>,
    opts: &'o ArchiveOptions,
}

impl<'o> ArchiveWriter<'o> {
    fn create(path: &Path, opts: &'o ArchiveOptions) -> Result<Self> {
        let f = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let sink: Box<dyn Write> = if opts.gzip {
            Box::new(GzEncoder::new(f, flate2::Compression::fast()))
        } else {
            Box::new(f)
        };
        Ok(ArchiveWriter {
            tar: tar::Builder::new(sink),
            opts,
        })
    }

    fn replacement(&self, name: &str) -> Option<&[u8]> {
        self.opts
            .replace_members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    fn skip(&self, name: &str) -> bool {
        self.opts.omit_members.iter().any(|n| n == name)
    }

    fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if self.skip(name) {
            return Ok(());
        }
        let bytes = self
            .replacement(name)
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| bytes.to_vec());
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        self.tar.append_data(&mut h, name, bytes.as_slice())?;
        Ok(())
    }

    fn add_file(&mut self, name: &str, src: &Path) -> Result<()> {
        if self.skip(name) {
            return Ok(());
        }
        if let Some(bytes) = self.replacement(name).map(<[u8]>::to_vec) {
            return self.add_bytes(name, &bytes);
        }
        let mut f = File::open(src)?;
        let len = f.metadata()?.len();
        let mut h = header(tar::EntryType::Regular, 0o644, len);
        self.tar.append_data(&mut h, name, &mut f)?;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let mut sink = self.tar.into_inner()?;
        sink.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageBuilder {
        ImageBuilder::new()
            .tag("demo:1")
            .layer(
                Layer::new()
                    .file("a.txt", "a")
                    .created_by("/bin/sh -c echo a"),
            )
            .empty_step("/bin/sh -c #(nop)  CMD [\"sh\"]")
            .layer(
                Layer::new()
                    .compression(Compression::Zstd)
                    .file("b.txt", "b"),
            )
    }

    #[test]
    fn oci_layout_digests_match_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let w = sample().write_oci_layout(dir.path()).unwrap();
        for l in &w.layers {
            let blob = fs::read(dir.path().join("blobs/sha256").join(hex_of(&l.digest))).unwrap();
            assert_eq!(
                format!("sha256:{}", hex::encode(Sha256::digest(&blob))),
                l.digest
            );
            assert_eq!(blob.len() as u64, l.size);
        }
        assert!(dir.path().join("index.json").is_file());
    }

    #[test]
    fn docker_archive_is_deterministic_and_lists_members() {
        let dir = tempfile::tempdir().unwrap();
        let a = sample()
            .write_docker_archive(&dir.path().join("a.tar"))
            .unwrap();
        let b = sample()
            .write_docker_archive(&dir.path().join("b.tar"))
            .unwrap();
        assert_eq!(a.config_digest, b.config_digest);
        let mut ar = tar::Archive::new(File::open(dir.path().join("a.tar")).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"manifest.json".to_string()));
        assert!(names.contains(&a.layer_members[1]));
    }
}
