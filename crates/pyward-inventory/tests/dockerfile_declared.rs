//! Packages installed by Dockerfiles: `RUN pip install` lines, and `pip install -r FILE` traced
//! back through COPY/WORKDIR to the build context (folders, through `DirTree`) or read from the
//! image's own files (a Dockerfile reconstructed from history, through `MemTree`).

use pyward_core::{DeclaredKind, LayerRef, Package, PackageSource, Warning};
use pyward_inventory::declared::{catalog, packages_from_dockerfile, DockerContext};
use pyward_inventory::dir::DirTree;
use pyward_inventory::dockerfile::Dockerfile;
use pyward_inventory::{EntryKind, FileEntry, MemTree};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn scan(root: &Path) -> (Vec<Package>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let tree = DirTree::open(root, &mut warnings).unwrap();
    let packages = catalog(&tree, &mut warnings);
    (packages, warnings)
}

fn named<'a>(packages: &'a [Package], name: &str) -> Vec<&'a Package> {
    packages.iter().filter(|p| p.name == name).collect()
}

#[test]
fn run_pip_install_names_the_package_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        "# syntax=docker/dockerfile:1\nFROM python:3.12-slim\n\nRUN pip install --no-cache-dir python3-dateutil\n",
    );
    let (packages, warnings) = scan(dir.path());
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(packages.len(), 1, "{packages:#?}");
    let p = &packages[0];
    assert_eq!(p.name, "python3-dateutil");
    assert_eq!(p.normalized, "python3-dateutil");
    assert_eq!(p.version, None);
    assert_eq!(p.source, PackageSource::Declared(DeclaredKind::Dockerfile));
    assert_eq!(p.location.path, "Dockerfile");
    assert_eq!(p.location.line, Some(4));
}

#[test]
fn requirements_copied_into_workdir_are_found_once_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        "FROM python:3.12\nCOPY requirements.txt /app/\nWORKDIR /app\nRUN pip install -r requirements.txt\n",
    );
    write(
        dir.path(),
        "requirements.txt",
        "# pinned\nrequests==2.32.3\njeIlyfish==0.5.1\n",
    );
    let (packages, warnings) = scan(dir.path());
    assert!(warnings.is_empty(), "{warnings:#?}");
    let j = named(&packages, "jeIlyfish");
    assert_eq!(
        j.len(),
        1,
        "listed once although both the folder and the Dockerfile lead to it"
    );
    assert_eq!(j[0].version.as_deref(), Some("0.5.1"));
    assert_eq!(j[0].location.path, "requirements.txt");
    assert_eq!(j[0].location.line, Some(3));
    assert_eq!(
        j[0].source,
        PackageSource::Declared(DeclaredKind::Requirements)
    );
    assert_eq!(packages.len(), 2);
}

#[test]
fn a_requirements_file_of_any_name_is_traced_through_copy_and_workdir() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "svc/docker/api.Dockerfile",
        "FROM python:3.12 AS base\n\
         WORKDIR /srv\n\
         COPY deps/prod.pip ./reqs/\n\
         COPY tools/ /opt/tools/\n\
         RUN python3 -m pip install --upgrade pip \\\n    && pip install -r reqs/prod.pip \\\n    && pip3 install --requirement=/opt/tools/extra.in\n\
         FROM base AS final\n\
         RUN pip install -r nowhere.txt\n",
    );
    write(
        dir.path(),
        "svc/docker/deps/prod.pip",
        "flask==3.0.0\njeIlyfish==0.5.1\n",
    );
    write(dir.path(), "svc/docker/tools/extra.in", "\nsix\n");
    let (packages, warnings) = scan(dir.path());

    let j = named(&packages, "jeIlyfish");
    assert_eq!(j.len(), 1, "{packages:#?}");
    assert_eq!(j[0].location.path, "svc/docker/deps/prod.pip");
    assert_eq!(j[0].location.line, Some(2));
    assert_eq!(
        j[0].source,
        PackageSource::Declared(DeclaredKind::Requirements)
    );
    let six = named(&packages, "six");
    assert_eq!(six.len(), 1);
    assert_eq!(six[0].location.path, "svc/docker/tools/extra.in");
    assert_eq!(six[0].location.line, Some(2));
    let pip = named(&packages, "pip");
    assert_eq!(pip.len(), 1);
    assert_eq!(pip[0].location.path, "svc/docker/api.Dockerfile");
    assert_eq!(pip[0].location.line, Some(5));
    // The second stage's `-r nowhere.txt` is in no COPY: a warning naming the Dockerfile line.
    assert!(
        warnings
            .iter()
            .any(|w| w.input == "svc/docker/api.Dockerfile"
                && w.message.contains("line 9:")
                && w.message.contains("nowhere.txt")),
        "{warnings:#?}"
    );
}

#[test]
fn heredocs_exec_form_and_backtick_escape() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Containerfile",
        "# escape=`\nFROM python:3.12\nRUN pip install `\n    jeIlyfish==0.5.1\nRUN [\"python3\", \"-m\", \"pip\", \"install\", \"exec-form\"]\nRUN <<EOF\nset -e\npip install heredoc-pkg\nEOF\nRUN cat <<EOF > /tmp/notes\npip install not-a-command\nEOF\n",
    );
    let (packages, warnings) = scan(dir.path());
    assert!(warnings.is_empty(), "{warnings:#?}");
    let got: Vec<(String, u32)> = packages
        .iter()
        .map(|p| (p.name.clone(), p.location.line.unwrap_or(0)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("jeIlyfish".to_string(), 3),
            ("exec-form".to_string(), 5),
            ("heredoc-pkg".to_string(), 6)
        ]
    );
}

#[test]
fn hostile_dockerfiles_do_not_escape_or_panic() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "leaked==1\n");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ctx");
    let rel_outside = format!(
        "../../../../../../../../..{}",
        outside.path().join("secret.txt").display()
    );
    let mut text = format!(
        "FROM x\nCOPY {rel_outside} /a.txt\nRUN pip install -r /a.txt\nRUN pip install -r ../../../../../../etc/passwd\n"
    )
    .into_bytes();
    text.extend_from_slice(b"RUN pip install \xff\xfeok\n");
    write(&root, "Dockerfile", text);
    let (packages, warnings) = scan(&root);
    assert!(named(&packages, "leaked").is_empty());
    assert!(
        warnings.iter().any(|w| w.message.contains("UTF-8")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.message.contains("line 3:")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.message.contains("line 4:")),
        "{warnings:#?}"
    );
}

fn file(path: &str, size: usize, layer: usize) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: EntryKind::File,
        size: size as u64,
        mode: 0o644,
        layer: Some(layer),
    }
}

fn layer(index: usize, created_by: &str) -> LayerRef {
    LayerRef {
        index,
        digest: format!("sha256:{index:064}"),
        diff_id: None,
        created_by: Some(created_by.to_string()),
    }
}

#[test]
fn image_history_dockerfile_reads_r_files_from_the_image() {
    let deps = b"jeIlyfish==0.5.1\n".to_vec();
    let listed = b"python3-dateutil==2.8.2\n".to_vec();
    let mut contents: HashMap<String, Arc<[u8]>> = HashMap::new();
    contents.insert("/srv/deps.pip".into(), Arc::from(deps.as_slice()));
    contents.insert("/srv/requirements.txt".into(), Arc::from(listed.as_slice()));
    let tree = MemTree::from_parts(
        "demo.tar",
        vec![
            file("/srv/deps.pip", deps.len(), 1),
            file("/srv/requirements.txt", listed.len(), 1),
        ],
        contents,
        vec![layer(0, "base"), layer(1, "COPY . /srv # buildkit")],
    );
    // As Anchore guesses it from history.
    let history = "FROM scratch\n\
        RUN RUN /bin/sh -c pip install python3-dateutil # buildkit\n\
        WORKDIR /srv\n\
        COPY . /srv # buildkit\n\
        RUN RUN /bin/sh -c pip install -r deps.pip -r requirements.txt # buildkit\n\
        RUN |1 REQ=/tmp/r.txt /bin/sh -c pip install -r /tmp/gone.txt && rm /tmp/gone.txt\n";
    let df = Dockerfile::parse(history);
    let mut warnings = Vec::new();
    let packages = packages_from_dockerfile(
        &df,
        "<image history>",
        &tree,
        DockerContext::Image,
        &mut warnings,
    );

    let d = named(&packages, "python3-dateutil");
    assert_eq!(d.len(), 1, "{packages:#?}");
    assert_eq!(d[0].location.path, "<image history>");
    assert_eq!(d[0].location.line, Some(2));
    assert_eq!(
        d[0].source,
        PackageSource::Declared(DeclaredKind::Dockerfile)
    );

    let j = named(&packages, "jeIlyfish");
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].location.path, "/srv/deps.pip");
    assert_eq!(j[0].location.line, Some(1));
    assert_eq!(j[0].location.layer.as_ref().map(|l| l.index), Some(1));

    // /srv/requirements.txt is listed by catalog(); not again here.
    assert_eq!(packages.len(), 2, "{packages:#?}");
    let mut catalog_warnings = Vec::new();
    let cataloged = catalog(&tree, &mut catalog_warnings);
    assert_eq!(cataloged.len(), 1);
    assert_eq!(cataloged[0].name, "python3-dateutil");
    assert_eq!(cataloged[0].location.path, "/srv/requirements.txt");

    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("/tmp/gone.txt") && w.message.contains("line 6:")),
        "{warnings:#?}"
    );
}

#[test]
fn dockerfiles_inside_images_are_not_build_inputs() {
    let text = b"FROM x\nRUN pip install from-image-dockerfile\n".to_vec();
    let mut contents: HashMap<String, Arc<[u8]>> = HashMap::new();
    contents.insert("/app/Dockerfile".into(), Arc::from(text.as_slice()));
    let tree = MemTree::from_parts(
        "img",
        vec![file("/app/Dockerfile", text.len(), 0)],
        contents,
        vec![layer(0, "COPY . /app")],
    );
    let mut warnings = Vec::new();
    assert!(catalog(&tree, &mut warnings).is_empty());
    // The same file in a folder is read.
    let tree = MemTree::from_parts(
        "folder",
        vec![FileEntry {
            layer: None,
            ..file("/app/Dockerfile", text.len(), 0)
        }],
        HashMap::from([("/app/Dockerfile".to_string(), Arc::from(text.as_slice()))]),
        vec![],
    );
    let found = catalog(&tree, &mut warnings);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "from-image-dockerfile");
}

#[test]
fn big_hostile_dockerfiles_stay_fast() {
    let mut text = String::from("FROM x\n");
    for i in 0..50_000 {
        text.push_str(&format!("COPY src{i}/ /dst{i}/\n"));
    }
    for i in 0..2_000 {
        text.push_str(&format!("RUN pip install -r /dst{i}/r.txt pkg{i}\n"));
    }
    text.push_str("RUN sh <<A\n");
    text.push_str(&"sh <<A\n".repeat(50_000));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", &text);
    let started = std::time::Instant::now();
    let (packages, warnings) = scan(dir.path());
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    assert_eq!(named(&packages, "pkg1999").len(), 1);
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("only the first")),
        "{warnings:#?}"
    );
}
