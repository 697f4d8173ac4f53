//! Events files written and read as a stream, with each process written once.
//!
//! A live event carries its process and every ancestor (parent first). Written out in full,
//! each line repeats the whole ancestry: 10 to 60 KiB per line under a deep shell or CI
//! process tree, almost all of it the same processes again. [`ReplayWriter`] writes each
//! process once, as a definition line, and the events refer to it by number:
//!
//! ```text
//! {"process_ref":1,"process":{"pid":4000,"name":"bash","exepath":"/usr/bin/bash"}}
//! {"process_ref":2,"process":{"pid":4242,"ppid":4000,"name":"python3","args":["x.py"]}}
//! {"time":1785419600000000000,"type":"openat","res":3,"proc_ref":2,"ancestor_refs":[1],...}
//! {"process_refs":"forget"}
//! ```
//!
//! [`ReplayReader`] resolves the references, so the events it returns are the same as if
//! each line had carried its processes in full (lines that do are still accepted, and may
//! be mixed with references). `{"process_refs":"forget"}` drops every definition so far: the
//! writer emits it every [`WRITER_FORGET_AFTER`] definitions, which bounds the memory of
//! both sides on a recording of any length. See docs/events.md.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::replay::{
    ArgValue, EventTime, RawLine, ReplayContainer, ReplayError, ReplayEvent, ReplayFd, ReplayGroup,
    ReplayK8s, ReplayProcess, ReplayUser,
};

/// Most process definitions a [`ReplayReader`] keeps (a `forget` line empties the table).
pub const MAX_PROCESS_DEFINITIONS: usize = 1 << 20;
/// Most bytes of definition lines a [`ReplayReader`] keeps.
pub const MAX_PROCESS_TABLE_BYTES: usize = 512 << 20;
/// Definitions after which a [`ReplayWriter`] forgets its table and starts over.
pub const WRITER_FORGET_AFTER: usize = 1 << 14;
/// Bytes of definitions after which a [`ReplayWriter`] forgets its table and starts over.
pub const WRITER_FORGET_BYTES: usize = 16 << 20;

/// Reads the lines of an events file in order, resolving process references.
#[derive(Debug, Default)]
pub struct ReplayReader {
    table: HashMap<u64, Arc<ReplayProcess>>,
    table_bytes: usize,
}

impl ReplayReader {
    /// An empty table.
    pub fn new() -> ReplayReader {
        ReplayReader::default()
    }

    /// Read one line: `Ok(Some(event))` for an event, `Ok(None)` for a process definition or
    /// a `forget` line (nothing to evaluate).
    pub fn parse_line(&mut self, line: &str) -> Result<Option<ReplayEvent>, ReplayError> {
        match RawLine::parse(line)? {
            RawLine::Forget => {
                self.table.clear();
                self.table_bytes = 0;
                Ok(None)
            }
            RawLine::Define { id, mut process } => {
                if self.table.contains_key(&id) {
                    return Err(ReplayError::Invalid(format!(
                        "process_ref {id} is defined twice (each number names one process \
                         until a {{\"process_refs\":\"forget\"}} line)"
                    )));
                }
                if self.table.len() >= MAX_PROCESS_DEFINITIONS
                    || self.table_bytes + line.len() > MAX_PROCESS_TABLE_BYTES
                {
                    return Err(ReplayError::Invalid(format!(
                        "more than {MAX_PROCESS_DEFINITIONS} process definitions or \
                         {} MiB of them without a {{\"process_refs\":\"forget\"}} line",
                        MAX_PROCESS_TABLE_BYTES >> 20
                    )));
                }
                process.finish();
                self.table_bytes += line.len();
                self.table.insert(id, Arc::new(process));
                Ok(None)
            }
            RawLine::Event {
                event,
                proc_ref,
                ancestor_refs,
            } => {
                let mut ev = event;
                if let Some(id) = proc_ref {
                    ev.proc = self.lookup(id, "proc_ref")?;
                }
                if let Some(ids) = ancestor_refs {
                    ev.ancestors = ids
                        .iter()
                        .map(|&id| self.lookup(id, "ancestor_refs"))
                        .collect::<Result<_, _>>()?;
                }
                ev.finish()?;
                Ok(Some(ev))
            }
        }
    }

    fn lookup(&self, id: u64, key: &str) -> Result<Arc<ReplayProcess>, ReplayError> {
        self.table.get(&id).cloned().ok_or_else(|| {
            ReplayError::Invalid(format!(
                "{key} {id} names no process defined earlier in the file (a \
                 {{\"process_ref\":{id},\"process\":{{...}}}} line must come first)"
            ))
        })
    }
}

/// Writes events with each process once (see the module documentation). One writer per
/// output file: its numbering means nothing in another file.
#[derive(Debug, Default)]
pub struct ReplayWriter {
    /// Processes already written, by the address of their shared record (the `Arc` is
    /// kept, so the address cannot be reused by another process while it is here).
    by_ptr: HashMap<usize, (u64, Arc<ReplayProcess>)>,
    /// The same by content, for equal records that are not shared.
    by_content: HashMap<String, u64>,
    next_id: u64,
    defined_bytes: usize,
    scratch: Vec<u64>,
}

fn is_default<T: Default + PartialEq>(v: &&T) -> bool {
    **v == T::default()
}

/// An event line with its processes by reference.
#[derive(Serialize)]
struct EventLine<'a> {
    time: &'a EventTime,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    res: Option<i64>,
    proc_ref: u64,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    ancestor_refs: &'a [u64],
    #[serde(skip_serializing_if = "is_default")]
    user: &'a ReplayUser,
    #[serde(skip_serializing_if = "is_default")]
    group: &'a ReplayGroup,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a ReplayContainer>,
    #[serde(skip_serializing_if = "is_default")]
    k8s: &'a ReplayK8s,
    #[serde(skip_serializing_if = "Option::is_none")]
    fd: Option<&'a ReplayFd>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    args: &'a [(String, ArgValue)],
    #[serde(skip_serializing_if = "Option::is_none")]
    buffer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buffer_hex: Option<&'a str>,
}

impl ReplayWriter {
    /// A writer for a new file.
    pub fn new() -> ReplayWriter {
        ReplayWriter::default()
    }

    /// Append to `out` the line(s) for `ev`: a definition for each of its processes not
    /// yet written, then the event. If this fails, `out` may hold part of the lines: drop it
    /// and everything the writer writes after (its table no longer matches the file).
    pub fn encode(&mut self, ev: &ReplayEvent, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if self.by_ptr.len().max(self.by_content.len()) >= WRITER_FORGET_AFTER
            || self.defined_bytes >= WRITER_FORGET_BYTES
        {
            self.by_ptr.clear();
            self.by_content.clear();
            self.defined_bytes = 0;
            out.extend_from_slice(b"{\"process_refs\":\"forget\"}\n");
        }
        let mut refs = std::mem::take(&mut self.scratch);
        refs.clear();
        let proc_ref = self.define(&ev.proc, out)?;
        for a in &ev.ancestors {
            let id = self.define(a, out)?;
            refs.push(id);
        }
        let line = EventLine {
            time: &ev.time,
            event_type: &ev.event_type,
            dir: ev.dir.as_deref(),
            num: ev.num,
            res: ev.res.or(ev.rawres),
            proc_ref,
            ancestor_refs: &refs,
            user: &ev.user,
            group: &ev.group,
            container: ev.container.as_ref(),
            k8s: &ev.k8s,
            fd: ev.fd.as_ref(),
            args: &ev.args,
            buffer: ev.buffer.as_deref(),
            buffer_hex: ev.buffer_hex.as_deref(),
        };
        let r = serde_json::to_writer(&mut *out, &line);
        out.push(b'\n');
        self.scratch = refs;
        r
    }

    /// The number of `p`, writing its definition first if it is new to this file.
    fn define(&mut self, p: &Arc<ReplayProcess>, out: &mut Vec<u8>) -> serde_json::Result<u64> {
        let ptr = Arc::as_ptr(p) as usize;
        if let Some((id, _)) = self.by_ptr.get(&ptr) {
            return Ok(*id);
        }
        let content = serde_json::to_string(&**p)?;
        let id = match self.by_content.get(&content) {
            Some(&id) => id,
            None => {
                self.next_id += 1;
                let id = self.next_id;
                // The process is already serialised (the lookup key): wrap it, do not
                // serialise it again.
                let start = out.len();
                out.extend_from_slice(format!("{{\"process_ref\":{id},\"process\":").as_bytes());
                out.extend_from_slice(content.as_bytes());
                out.extend_from_slice(b"}\n");
                self.defined_bytes += out.len() - start;
                self.by_content.insert(content, id);
                id
            }
        };
        self.by_ptr.insert(ptr, (id, Arc::clone(p)));
        Ok(id)
    }
}
