//! One layer blob, streamed: decompressed by magic (gzip, zstd or plain tar), hashed on both
//! sides (blob digest and diff id), guarded against bombs, and turned into a list of entries,
//! whiteouts and opaque folders. Nothing is extracted to disk.

use super::store::GZIP_MAGIC;
use crate::tree::{clean_path, EntryKind, KeepPredicate, Limits};
use flate2::bufread::MultiGzDecoder;
use pyward_core::{Error, Warning};
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// zstd frame magic, little-endian on disk.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression ratio is only judged past this many uncompressed bytes: tiny layers of
/// zeros compress very well and are harmless.
const RATIO_FLOOR: u64 = 1024 * 1024;

/// The AUFS/OCI whiteout prefix and the opaque-folder marker.
pub(super) const WHITEOUT_PREFIX: &str = ".wh.";
pub(super) const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What one layer holds, in tar order.
#[derive(Debug, Default, Clone)]
pub(super) struct LayerContents {
    pub entries: Vec<LayerEntry>,
    /// Paths deleted from lower layers by `.wh.<name>`.
    pub whiteouts: Vec<String>,
    /// Folders whose lower-layer contents are hidden by `.wh..wh..opq`.
    pub opaques: Vec<String>,
    /// `sha256:` of the blob as stored.
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone)]
pub(super) struct LayerEntry {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub content: Option<Arc<[u8]>>,
}

/// Everything a layer scan needs to know besides the bytes.
pub(super) struct LayerCtx<'a> {
    /// The image as named to the user.
    pub image: &'a str,
    pub index: usize,
    /// The member or blob the layer is read from, for messages.
    pub member: &'a str,
    pub limits: &'a Limits,
    /// Uncompressed bytes read so far over all layers of the image.
    pub total: &'a AtomicU64,
    pub keep: KeepPredicate<'a>,
}

impl LayerCtx<'_> {
    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::input(
            self.image,
            format!("layer {} ({}): {message}", self.index, self.member),
        )
    }

    fn warning(&self, message: impl std::fmt::Display) -> Warning {
        Warning::new(
            self.image,
            format!("layer {} ({}): {message}", self.index, self.member),
        )
    }
}

/// Hashes and counts the compressed bytes as they are read.
struct Meter<R> {
    inner: R,
    hash: Sha256,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Why a layer read was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Total,
    Ratio,
}

/// Hashes the uncompressed bytes and stops the read when a limit is crossed.
struct Guard<'a, R> {
    inner: R,
    hash: Sha256,
    count: u64,
    compressed: Arc<AtomicU64>,
    trip: Rc<Cell<Option<Trip>>>,
    limits: &'a Limits,
    total: &'a AtomicU64,
}

impl<R: Read> Read for Guard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        let total = self.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let trip = if total > self.limits.max_total_uncompressed {
            Some(Trip::Total)
        } else if self.count > RATIO_FLOOR
            && self.count / self.compressed.load(Ordering::Relaxed).max(1) > self.limits.max_ratio
        {
            Some(Trip::Ratio)
        } else {
            None
        };
        if let Some(t) = trip {
            self.trip.set(Some(t));
            return Err(io::Error::other("decompression limit reached"));
        }
        Ok(n)
    }
}

/// A layer stream, decompressed by what its first bytes say.
enum Decoded<R: BufRead> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<R>>),
    Zstd(Box<Zstd<R>>),
}

impl<R: BufRead> Decoded<R> {
    fn new(mut src: R) -> io::Result<Self> {
        let head = src.fill_buf()?;
        Ok(if head.starts_with(&GZIP_MAGIC) {
            Decoded::Gzip(Box::new(MultiGzDecoder::new(src)))
        } else if head.starts_with(&ZSTD_MAGIC) {
            Decoded::Zstd(Box::new(Zstd {
                src,
                dec: FrameDecoder::new(),
                in_frame: false,
            }))
        } else {
            Decoded::Plain(src)
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoded::Plain(r) => r,
            Decoded::Gzip(d) => d.into_inner(),
            Decoded::Zstd(z) => z.src,
        }
    }
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Gzip(d) => d.read(buf),
            Decoded::Zstd(z) => z.read(buf),
        }
    }
}

/// A streaming zstd decoder over any number of frames, skipping skippable frames (the
/// `zstd:chunked` table of contents).
struct Zstd<R> {
    src: R,
    dec: FrameDecoder,
    in_frame: bool,
}

fn zstd_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt zstd stream: {e}"),
    )
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.src.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.dec.init(&mut self.src) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let want = u64::from(length);
                        let skipped = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                        if skipped != want {
                            return Err(zstd_err("truncated skippable frame"));
                        }
                        continue;
                    }
                    Err(e) => return Err(zstd_err(e)),
                }
            }
            while self.dec.can_collect() < buf.len() && !self.dec.is_finished() {
                let need = buf.len() - self.dec.can_collect();
                self.dec
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(need))
                    .map_err(zstd_err)?;
            }
            let n = self.dec.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.dec.is_finished() {
                self.in_frame = false;
                continue;
            }
            return Err(zstd_err("no progress"));
        }
    }
}

/// A layer blob opened for reading: the compressed-side digest and byte count on the way in,
/// decompression by magic on the way out.
type Opened<'r, R> = Decoded<BufReader<Meter<&'r mut R>>>;

fn open_blob<'r, R: Read + ?Sized>(
    raw: &'r mut R,
    ctx: &LayerCtx<'_>,
) -> Result<(Opened<'r, R>, Arc<AtomicU64>), Error> {
    let compressed = Arc::new(AtomicU64::new(0));
    let meter = Meter {
        inner: raw,
        hash: Sha256::new(),
        count: compressed.clone(),
    };
    let buffered = BufReader::with_capacity(128 * 1024, meter);
    let decoded = Decoded::new(buffered).map_err(|e| ctx.error(format!("cannot read: {e}")))?;
    Ok((decoded, compressed))
}

/// Read what is left of the blob (trailing bytes after the compressed stream) and finish both
/// digests.
fn finish_blob<R: Read + ?Sized>(
    decoded: Opened<'_, R>,
    mut out: LayerContents,
    diff_id: String,
    ctx: &LayerCtx<'_>,
) -> Result<LayerContents, Error> {
    let mut meter = decoded.into_inner().into_inner();
    io::copy(&mut meter, &mut io::sink())
        .map_err(|e| ctx.error(format!("corrupt or truncated layer: {e}")))?;
    out.diff_id = diff_id;
    out.digest = format!("sha256:{}", hex::encode(meter.hash.finalize()));
    Ok(out)
}

/// Scan one layer blob read from `raw`, decompressing and parsing in this thread.
pub(super) fn scan_layer(raw: &mut dyn Read, ctx: &LayerCtx<'_>) -> Result<LayerContents, Error> {
    let (mut decoded, compressed) = open_blob(raw, ctx)?;
    let (out, diff_id) = scan_tar(&mut decoded, compressed, ctx)?;
    finish_blob(decoded, out, diff_id, ctx)
}

/// Chunks handed from the decompressing thread to the parsing one.
const PIPE_CHUNK: usize = 256 * 1024;
/// Chunks in flight: bounds the memory a pipelined layer read uses (and how far decompression
/// runs ahead of the bomb guard) to about 1 MiB.
const PIPE_DEPTH: usize = 4;

/// Like [`scan_layer`], but decompression (and the blob digest) runs on a second thread while
/// this one parses the tar and computes the diff id: on a big gzip layer the two halves cost
/// about the same, so this nearly halves the wall time.
pub(super) fn scan_layer_pipelined(
    raw: &mut (dyn Read + Send),
    ctx: &LayerCtx<'_>,
) -> Result<LayerContents, Error> {
    let (mut decoded, compressed) = open_blob(raw, ctx)?;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(PIPE_DEPTH);
        let producer = scope.spawn(move || {
            loop {
                let mut buf = vec![0u8; PIPE_CHUNK];
                match decoded.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        // The parser stopped early (error or limit): stop decompressing.
                        if tx.send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
            decoded
        });
        let parsed = scan_tar(
            ChannelReader {
                rx,
                chunk: Vec::new(),
                pos: 0,
            },
            compressed,
            ctx,
        );
        let decoded = producer
            .join()
            .map_err(|_| ctx.error("the decompression thread failed"))?;
        let (out, diff_id) = parsed?;
        finish_blob(decoded, out, diff_id, ctx)
    })
}

/// Reads the chunks a decompressing thread sends.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the sender finished: end of stream
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Parse the uncompressed tar stream of a layer (guarded against bombs), read it to its end and
/// return its entries with its diff id.
fn scan_tar<R: Read>(
    input: R,
    compressed: Arc<AtomicU64>,
    ctx: &LayerCtx<'_>,
) -> Result<(LayerContents, String), Error> {
    let trip = Rc::new(Cell::new(None));
    let guard = Guard {
        inner: input,
        hash: Sha256::new(),
        count: 0,
        compressed,
        trip: trip.clone(),
        limits: ctx.limits,
        total: ctx.total,
    };
    let fail = |e: io::Error| -> Error {
        match trip.get() {
            Some(Trip::Total) => ctx.error(format!(
                "the image unpacks to more than {} bytes (limit); refusing to read further",
                ctx.limits.max_total_uncompressed
            )),
            Some(Trip::Ratio) => ctx.error(format!(
                "compression ratio over {}:1, a likely decompression bomb; refusing to read further",
                ctx.limits.max_ratio
            )),
            None => ctx.error(format!("corrupt or truncated layer: {e}")),
        }
    };

    let mut out = LayerContents::default();
    let mut archive = tar::Archive::new(guard);
    let mut count = 0u64;
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        count += 1;
        if count > ctx.limits.max_entries {
            return Err(ctx.error(format!(
                "more than {} entries in one layer (limit)",
                ctx.limits.max_entries
            )));
        }
        read_entry(&mut entry, ctx, &mut out).map_err(fail)?;
    }
    // Read to the end so the digest covers the whole stream (tar padding, trailing frames).
    let mut guard = archive.into_inner();
    io::copy(&mut guard, &mut io::sink()).map_err(fail)?;
    Ok((
        out,
        format!("sha256:{}", hex::encode(guard.hash.finalize())),
    ))
}

/// Record one tar entry of a layer.
fn read_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    ctx: &LayerCtx<'_>,
    out: &mut LayerContents,
) -> io::Result<()> {
    let raw_name = entry.path_bytes().into_owned();
    let name = match String::from_utf8(raw_name) {
        Ok(s) => s,
        Err(e) => {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            out.warnings.push(ctx.warning(format!(
                "member name {lossy:?} is not valid UTF-8; listed with replacement characters"
            )));
            lossy
        }
    };
    let Some(path) = clean_path(&name) else {
        out.warnings.push(ctx.warning(format!(
            "member {name:?} climbs above the image root (path traversal); skipped"
        )));
        return Ok(());
    };
    if path == "/" {
        return Ok(());
    }
    let (dir, base) = match path.rsplit_once('/') {
        Some(("", b)) => ("/", b),
        Some((d, b)) => (d, b),
        None => ("/", path.as_str()),
    };
    if base == OPAQUE_MARKER {
        out.opaques.push(dir.to_string());
        return Ok(());
    }
    if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
        if !hidden.is_empty() {
            let target = if dir == "/" {
                format!("/{hidden}")
            } else {
                format!("{dir}/{hidden}")
            };
            out.whiteouts.push(target);
        }
        return Ok(());
    }
    let header = entry.header();
    let mode = header.mode().unwrap_or(0) & 0o7777;
    let size = entry.size();
    let link = || {
        entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            EntryKind::File
        }
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => match link() {
            Some(t) if !t.is_empty() => EntryKind::Symlink(t),
            _ => {
                out.warnings
                    .push(ctx.warning(format!("symlink {path:?} has no target; skipped")));
                return Ok(());
            }
        },
        tar::EntryType::Link => match link().as_deref().and_then(clean_path) {
            Some(t) if t != "/" => EntryKind::Hardlink(t),
            _ => {
                out.warnings.push(ctx.warning(format!(
                    "hard link {path:?} points above the image root or nowhere; skipped"
                )));
                return Ok(());
            }
        },
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => EntryKind::Special,
        // PAX/GNU extension headers are applied by the tar crate; anything else is not a path.
        _ => return Ok(()),
    };
    let mut content = None;
    if kind == EntryKind::File && size <= ctx.limits.max_file_read && ctx.keep.wants(&path, size) {
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry.by_ref().take(size).read_to_end(&mut buf)?;
        if buf.len() as u64 != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} is cut short ({} of {size} bytes)", buf.len()),
            ));
        }
        if ctx.keep.retain(&path, &buf) {
            content = Some(Arc::from(buf));
        }
    }
    let size = if kind == EntryKind::File { size } else { 0 };
    out.entries.push(LayerEntry {
        path,
        kind,
        size,
        mode,
        content,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, c) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(c.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, *c).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn scan(blob: &[u8], limits: &Limits) -> Result<LayerContents, Error> {
        let total = AtomicU64::new(0);
        let keep = |_: &str, _: u64| true;
        let ctx = LayerCtx {
            image: "img",
            index: 0,
            member: "m",
            limits,
            total: &total,
            keep: &keep,
        };
        scan_layer(&mut &blob[..], &ctx)
    }

    #[test]
    fn zstd_frames_and_skippable_frames() {
        let data = tar_of(&[("a.txt", b"hello"), ("b.txt", &[7u8; 70_000])]);
        let (one, two) = data.split_at(1000);
        let mut blob = Vec::new();
        ruzstd::encoding::compress(one, &mut blob, ruzstd::encoding::CompressionLevel::Fastest);
        // A skippable frame (zstd:chunked puts its table of contents in one).
        blob.write_all(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3])
            .unwrap();
        ruzstd::encoding::compress(two, &mut blob, ruzstd::encoding::CompressionLevel::Fastest);
        let out = scan(&blob, &Limits::default()).unwrap();
        let names: Vec<&str> = out.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, vec!["/a.txt", "/b.txt"]);
        assert_eq!(
            out.entries[1].content.as_deref().map(<[u8]>::len),
            Some(70_000)
        );
        assert_eq!(
            out.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&data)))
        );
        assert_eq!(
            out.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&blob)))
        );
    }

    #[test]
    fn oversized_files_are_listed_not_kept() {
        let data = tar_of(&[("big", &[1u8; 5000])]);
        let limits = Limits {
            max_file_read: 100,
            ..Limits::default()
        };
        let out = scan(&data, &limits).unwrap();
        assert_eq!(out.entries[0].size, 5000);
        assert!(out.entries[0].content.is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = scan(
            &[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff],
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("layer 0 (m)"), "{err}");
        assert!(scan(&[0x1f, 0x8b, 0, 0], &Limits::default()).is_err());
    }
}
