//! Layers merged bottom to top into what a container sees, as stereoscope and Trivy do: per
//! layer, opaque folders first (hide every lower-layer child), then whiteouts (delete the path and
//! everything under it), then the layer's own entries. Whiteout markers are never listed.

use super::layer::LayerContents;
use crate::tree::{EntryKind, FileEntry};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Squashed = BTreeMap<String, (FileEntry, Option<Arc<[u8]>>)>;

/// Entries a later layer deleted (whiteout, opaque folder, or a file replacing a folder), with
/// the layer that added them and their kept content: what the image once held (`--layers all`).
pub(crate) type Removed = Vec<(FileEntry, Option<Arc<[u8]>>)>;

/// Remove every path strictly under `dir` added by a layer below `layer`.
fn remove_under(map: &mut Squashed, dir: &str, layer: usize, removed: &mut Removed) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, (e, _))| e.layer.is_some_and(|l| l < layer))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        if let Some(e) = map.remove(&k) {
            removed.push(e);
        }
    }
}

/// Squash layers (bottom first) into sorted entries and the contents that were kept.
pub(super) fn squash(
    layers: Vec<LayerContents>,
) -> (Vec<FileEntry>, HashMap<String, Arc<[u8]>>, Removed) {
    let mut map: Squashed = BTreeMap::new();
    let mut removed: Removed = Vec::new();
    for (index, layer) in layers.into_iter().enumerate() {
        for dir in &layer.opaques {
            remove_under(&mut map, dir, index, &mut removed);
        }
        for path in &layer.whiteouts {
            if map
                .get(path)
                .is_some_and(|(e, _)| e.layer.is_some_and(|l| l < index))
            {
                if let Some(e) = map.remove(path) {
                    removed.push(e);
                }
            }
            remove_under(&mut map, path, index, &mut removed);
        }
        for e in layer.entries {
            if e.kind != EntryKind::Dir {
                // A file replacing a folder hides what lower layers had in it.
                remove_under(&mut map, &e.path, index, &mut removed);
            }
            let entry = FileEntry {
                path: e.path.clone(),
                kind: e.kind,
                size: e.size,
                mode: e.mode,
                layer: Some(index),
            };
            map.insert(e.path, (entry, e.content));
        }
    }
    let mut contents = HashMap::new();
    let mut entries = Vec::with_capacity(map.len());
    for (path, (entry, content)) in map {
        if let Some(c) = content {
            contents.insert(path, c);
        }
        entries.push(entry);
    }
    (entries, contents, removed)
}

#[cfg(test)]
mod tests {
    use super::super::layer::LayerEntry;
    use super::*;

    fn file(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File,
            size: 1,
            mode: 0o644,
            content: None,
        }
    }

    fn dir(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::Dir,
            size: 0,
            mode: 0o755,
            content: None,
        }
    }

    #[test]
    fn whiteouts_opaques_and_replacement() {
        let l0 = LayerContents {
            entries: vec![
                dir("/a"),
                file("/a/x"),
                file("/a/y"),
                dir("/b"),
                file("/b/z"),
                file("/c"),
            ],
            ..Default::default()
        };
        let l1 = LayerContents {
            entries: vec![file("/a/new"), file("/c"), file("/b")],
            whiteouts: vec!["/a/x".into()],
            opaques: vec![],
            ..Default::default()
        };
        let l2 = LayerContents {
            entries: vec![file("/a/top")],
            opaques: vec!["/a".into()],
            ..Default::default()
        };
        let (entries, _, removed) = squash(vec![l0, l1, l2]);
        let mut gone: Vec<(&str, Option<usize>)> = removed
            .iter()
            .map(|(e, _)| (e.path.as_str(), e.layer))
            .collect();
        gone.sort();
        assert_eq!(
            gone,
            vec![
                ("/a/new", Some(1)),
                ("/a/x", Some(0)),
                ("/a/y", Some(0)),
                ("/b/z", Some(0))
            ]
        );
        let got: Vec<(&str, Option<usize>)> =
            entries.iter().map(|e| (e.path.as_str(), e.layer)).collect();
        assert_eq!(
            got,
            vec![
                ("/a", Some(0)),
                ("/a/top", Some(2)),
                ("/b", Some(1)),
                ("/c", Some(1))
            ]
        );
    }
}
