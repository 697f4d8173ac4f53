//! Declared dependencies read from real files in a folder (through `DirTree`): requirements
//! files with includes, pyproject.toml, every lock file kind, and bad inputs.

use pyward_core::{DeclaredKind, Package, PackageSource, Warning};
use pyward_inventory::declared::{catalog, catalog_as};
use pyward_inventory::dir::DirTree;
use pyward_inventory::FileTree;
use std::fs;
use std::path::Path;

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

fn find<'a>(packages: &'a [Package], name: &str) -> Vec<&'a Package> {
    packages.iter().filter(|p| p.name == name).collect()
}

fn one<'a>(packages: &'a [Package], name: &str) -> &'a Package {
    let found = find(packages, name);
    assert_eq!(
        found.len(),
        1,
        "expected one `{name}` in {:#?}",
        names(packages)
    );
    found[0]
}

fn names(packages: &[Package]) -> Vec<String> {
    packages
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}",
                p.location.path,
                p.location.line.unwrap_or(0),
                p.name
            )
        })
        .collect()
}

fn warned(warnings: &[Warning], input: &str, needle: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.input == input && w.message.contains(needle))
}

#[test]
fn requirements_with_includes_markers_urls_hashes_editables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "requirements.txt",
        "# the app\n\
         jeIlyfish==0.5.1 \\\n    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n\
         requests[socks]>=2.31,<3 ; python_version >= \"3.8\"  # http\n\
         -r requirements/base.txt\n\
         --constraint constraints.txt\n\
         -e git+https://example.invalid/dateutil.git#egg=python3-dateutil\n\
         -e ./local-project\n\
         --index-url https://pypi.example.invalid/simple\n\
         direct @ https://example.invalid/direct-1.0-py3-none-any.whl\n\
         ./wheels/Wheely_Pkg-2.0-py3-none-any.whl\n\
         https://example.invalid/no-name-here\n\
         pinned-env==${VERSION}\n\
         jeIlyfish=0.5.1\n",
    );
    write(
        root,
        "requirements/base.txt",
        "six==1.16.0\n-r ../requirements.txt\n",
    );
    write(root, "constraints.txt", "urllib3<3\n");
    let (packages, warnings) = scan(root);

    let j = find(&packages, "jeIlyfish");
    assert_eq!(j.len(), 2, "{:#?}", names(&packages));
    assert_eq!(j[0].version.as_deref(), Some("0.5.1"));
    assert_eq!(j[0].normalized, "jeilyfish");
    assert_eq!(j[0].purl, "pkg:pypi/jeilyfish@0.5.1");
    assert_eq!(j[0].location.path, "requirements.txt");
    assert_eq!(j[0].location.line, Some(2));
    assert_eq!(
        j[0].source,
        PackageSource::Declared(DeclaredKind::Requirements)
    );
    // The malformed `jeIlyfish=0.5.1` is still listed by name, with a warning naming the line.
    assert_eq!(j[1].location.line, Some(14));
    assert_eq!(j[1].version, None);
    assert!(
        warned(&warnings, "requirements.txt", "line 14:"),
        "{warnings:#?}"
    );

    let r = one(&packages, "requests");
    assert_eq!(r.version, None);
    assert_eq!(r.specifier.as_deref(), Some(">=2.31, <3"));
    assert_eq!(r.location.line, Some(4));

    let d = one(&packages, "python3-dateutil");
    assert_eq!(d.location.line, Some(7));
    assert!(d.specifier.as_deref().unwrap().starts_with("git+https://"));

    let direct = one(&packages, "direct");
    assert_eq!(
        direct.specifier.as_deref(),
        Some("https://example.invalid/direct-1.0-py3-none-any.whl")
    );
    assert_eq!(direct.version, None);

    let wheel = one(&packages, "Wheely_Pkg");
    assert_eq!(wheel.version.as_deref(), Some("2.0"));

    // Includes: base.txt (which includes requirements.txt back: a cycle) and the constraints.
    let six = one(&packages, "six");
    assert_eq!(six.location.path, "requirements/base.txt");
    assert_eq!(six.location.line, Some(1));
    assert_eq!(one(&packages, "urllib3").location.path, "constraints.txt");

    // Not invented: a URL without a name, an editable local folder, the variable.
    assert!(find(&packages, "no-name-here").is_empty());
    assert!(find(&packages, "local-project").is_empty());
    assert!(
        warned(&warnings, "requirements.txt", "line 12:"),
        "{warnings:#?}"
    );
    assert!(
        warned(&warnings, "requirements.txt", "line 13:"),
        "{warnings:#?}"
    );
    // Every file read once: no package listed twice from the same line.
    let mut keys: Vec<String> = names(&packages);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), packages.len());
}

#[test]
fn missing_deep_and_escaping_includes_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "requirements.txt",
        "-r missing.txt\n-r ../../../../etc/passwd\n-r https://example.invalid/r.txt\nflask\n",
    );
    // A chain of 20 includes: read up to the depth limit, then a warning.
    for i in 0..20 {
        write(
            root,
            &format!("chain/requirements-{i}.txt"),
            format!("-r requirements-{}.txt\npkg{i}\n", i + 1),
        );
    }
    let (packages, warnings) = scan(root);
    assert_eq!(one(&packages, "flask").location.line, Some(4));
    assert!(
        warned(&warnings, "requirements.txt", "line 1:"),
        "{warnings:#?}"
    );
    assert!(warnings.iter().any(|w| w.message.contains("missing.txt")));
    assert!(
        warned(&warnings, "requirements.txt", "line 2:"),
        "{warnings:#?}"
    );
    assert!(
        warned(&warnings, "requirements.txt", "never fetches"),
        "{warnings:#?}"
    );
    // Every file of the chain is also a candidate on its own, so all packages are found.
    for i in 0..20 {
        assert_eq!(find(&packages, &format!("pkg{i}")).len(), 1);
    }
}

#[test]
fn include_depth_is_bounded_for_files_not_listed_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "requirements.txt", "-r d0.pip\n");
    for i in 0..30 {
        write(
            root,
            &format!("d{i}.pip"),
            format!("-r d{}.pip\nlevel{i}\n", i + 1),
        );
    }
    let (packages, warnings) = scan(root);
    assert!(!find(&packages, "level0").is_empty());
    assert!(find(&packages, "level29").is_empty());
    assert!(
        warnings.iter().any(|w| w.message.contains("deeper than")),
        "{warnings:#?}"
    );
}

#[test]
fn pyproject_pep621_poetry_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "svc/pyproject.toml",
        r#"[project]
name = "svc"
version = "1.0"
dependencies = [
    "python3-dateutil>=2.8",
    "jeIlyfish==0.5.1; sys_platform == 'linux'",
]
[project.optional-dependencies]
test = ["pytest>=8", "svc[extra]"]

[dependency-groups]
dev = ["ruff", { include-group = "test" }]

[tool.poetry.dependencies]
python = "^3.11"
Django = "4.2.1"
celery = { version = "^5.3", extras = ["redis"] }
private = { git = "https://example.invalid/private.git" }

[tool.poetry.dev-dependencies]
black = "^24"

[tool.poetry.group.docs.dependencies]
sphinx = "*"
"#,
    );
    let (packages, warnings) = scan(root);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let d = one(&packages, "python3-dateutil");
    assert_eq!(d.location.path, "svc/pyproject.toml");
    assert_eq!(d.location.line, Some(5));
    assert_eq!(d.source, PackageSource::Declared(DeclaredKind::Pyproject));
    let j = one(&packages, "jeIlyfish");
    assert_eq!(
        (j.version.as_deref(), j.location.line),
        (Some("0.5.1"), Some(6))
    );
    assert_eq!(one(&packages, "Django").version.as_deref(), Some("4.2.1"));
    assert_eq!(one(&packages, "celery").specifier.as_deref(), Some("^5.3"));
    assert_eq!(
        one(&packages, "private").specifier.as_deref(),
        Some("https://example.invalid/private.git")
    );
    for n in ["pytest", "ruff", "sphinx", "black"] {
        one(&packages, n);
    }
    assert!(
        find(&packages, "svc").is_empty(),
        "the project itself is not a dependency"
    );
    assert!(find(&packages, "python").is_empty());
}

#[test]
fn every_lock_file_kind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "poetry/poetry.lock",
        "[[package]]\nname = \"jeIlyfish\"\nversion = \"0.5.1\"\ndescription = \"\"\noptional = false\n\n[metadata]\nlock-version = \"2.0\"\n",
    );
    write(
        root,
        "pipenv/Pipfile.lock",
        r#"{
    "_meta": {"hash": {"sha256": "00"}, "pipfile-spec": 6},
    "default": {
        "python3-dateutil": {"hashes": ["sha256:00"], "version": "==2.8.2"}
    },
    "develop": {
        "pytest": {"version": "==8.0.0"}
    }
}
"#,
    );
    write(
        root,
        "uv/uv.lock",
        "version = 1\nrequires-python = \">=3.11\"\n\n[[package]]\nname = \"my-app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\n\n[[package]]\nname = \"jeilyfish\"\nversion = \"0.5.1\"\nsource = { registry = \"https://pypi.org/simple\" }\n",
    );
    write(
        root,
        "virtual/uv.lock",
        "version = 1\n[[package]]\nname = \"ws\"\nsource = { virtual = \".\" }\n[[package]]\nname = \"six\"\nversion = \"1.16.0\"\nsource = { registry = \"https://pypi.org/simple\" }\n",
    );
    write(
        root,
        "pdm/pdm.lock",
        "[metadata]\ngroups = [\"default\"]\n\n[[package]]\nname = \"attrs\"\nversion = \"23.2.0\"\n",
    );
    write(root, "pylock/pylock.toml", "lock-version = \"1.0\"\ncreated-by = \"test\"\n\n[[packages]]\nname = \"idna\"\nversion = \"3.7\"\n");
    write(
        root,
        "pylock/pylock.dev.toml",
        "lock-version = \"1.0\"\n[[packages]]\nname = \"black\"\nversion = \"24.1.0\"\n",
    );

    let (packages, warnings) = scan(root);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let check = |name: &str, version: &str, path: &str, line: u32, kind: DeclaredKind| {
        let p = one(&packages, name);
        assert_eq!(p.version.as_deref(), Some(version), "{name}");
        assert_eq!(p.location.path, path, "{name}");
        assert_eq!(p.location.line, Some(line), "{name}");
        assert_eq!(p.source, PackageSource::Declared(kind), "{name}");
    };
    check(
        "jeIlyfish",
        "0.5.1",
        "poetry/poetry.lock",
        2,
        DeclaredKind::PoetryLock,
    );
    check(
        "python3-dateutil",
        "2.8.2",
        "pipenv/Pipfile.lock",
        4,
        DeclaredKind::PipfileLock,
    );
    check(
        "pytest",
        "8.0.0",
        "pipenv/Pipfile.lock",
        7,
        DeclaredKind::PipfileLock,
    );
    check("jeilyfish", "0.5.1", "uv/uv.lock", 10, DeclaredKind::UvLock);
    check("six", "1.16.0", "virtual/uv.lock", 6, DeclaredKind::UvLock);
    check("attrs", "23.2.0", "pdm/pdm.lock", 5, DeclaredKind::PdmLock);
    check("idna", "3.7", "pylock/pylock.toml", 5, DeclaredKind::Pylock);
    check(
        "black",
        "24.1.0",
        "pylock/pylock.dev.toml",
        3,
        DeclaredKind::Pylock,
    );
    assert!(
        find(&packages, "my-app").is_empty(),
        "uv's editable root project is not a dependency"
    );
    assert!(
        find(&packages, "ws").is_empty(),
        "uv's virtual root project is not a dependency"
    );
}

#[test]
fn wrong_shaped_and_broken_files_warn_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/Pipfile.lock", "[\"not\", \"an\", \"object\"]");
    write(root, "b/uv.lock", "[tool.ruff]\nline-length = 100\n");
    write(root, "c/poetry.lock", "[[package]\nname = ");
    write(root, "d/pdm.lock", "package = 42\n");
    write(
        root,
        "e/pyproject.toml",
        "[project]\ndependencies = \"requests\"\n",
    );
    write(root, "f/pylock.toml", "\u{0}\u{1}binary");
    write(root, "g/Pipfile.lock", "{\"default\": {\"x\": \"==1\"}}");
    write(
        root,
        "requirements.txt",
        b"good==1.0\n\xff\xfe\xfdbad\xc3(\nother==2.0\n".as_slice(),
    );
    let (packages, warnings) = scan(root);

    assert!(
        warned(&warnings, "a/Pipfile.lock", "JSON object"),
        "{warnings:#?}"
    );
    assert!(warned(&warnings, "b/uv.lock", "uv.lock"), "{warnings:#?}");
    assert!(
        warned(&warnings, "c/poetry.lock", "poetry.lock"),
        "{warnings:#?}"
    );
    assert!(warned(&warnings, "d/pdm.lock", "pdm.lock"), "{warnings:#?}");
    assert!(
        warned(&warnings, "e/pyproject.toml", "dependencies"),
        "{warnings:#?}"
    );
    assert!(
        warned(&warnings, "f/pylock.toml", "pylock"),
        "{warnings:#?}"
    );
    assert!(
        warned(&warnings, "g/Pipfile.lock", "Pipfile.lock"),
        "{warnings:#?}"
    );
    // Invalid UTF-8: reported, and the readable lines still count.
    assert!(
        warned(&warnings, "requirements.txt", "UTF-8"),
        "{warnings:#?}"
    );
    assert_eq!(one(&packages, "good").location.line, Some(1));
    assert_eq!(one(&packages, "other").location.line, Some(3));
}

#[test]
fn huge_files_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big = "x==1\n".repeat(1_000_000); // 5 MB, over the requirements read limit
    write(root, "requirements.txt", big);
    write(root, "small-requirements.txt", "ok==1\n");
    let (packages, warnings) = scan(root);
    assert!(find(&packages, "x").is_empty());
    assert_eq!(one(&packages, "ok").version.as_deref(), Some("1"));
    assert!(
        warned(&warnings, "requirements.txt", "limit"),
        "{warnings:#?}"
    );
}

#[test]
fn installed_environments_are_not_declarations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".venv/lib/python3.12/site-packages/somepkg/requirements.txt",
        "notlisted==1\n",
    );
    write(root, "requirements-dev.txt", "listed==1\n");
    let (packages, _) = scan(root);
    assert!(find(&packages, "notlisted").is_empty());
    one(&packages, "listed");
}

#[cfg(unix)]
#[test]
fn symlinked_include_out_of_the_root_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "leaked==1\n");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("linked.txt")).unwrap();
    write(root, "requirements.txt", "-r linked.txt\nok\n");
    let (packages, warnings) = scan(root);
    assert!(find(&packages, "leaked").is_empty());
    one(&packages, "ok");
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("linked.txt") || w.input.contains("linked.txt")),
        "{warnings:#?}"
    );
}

#[test]
fn a_single_file_target_resolves_its_includes_and_any_name_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "requirements.txt",
        "-r common.txt\njeIlyfish==0.5.1\n",
    );
    write(root, "common.txt", "six\n");
    write(root, "deps.pip", "python3-dateutil\n");
    let mut warnings = Vec::new();
    let tree = DirTree::single_file(&root.join("requirements.txt"), &mut warnings).unwrap();
    let packages = catalog(&tree, &mut warnings);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(one(&packages, "jeIlyfish").location.line, Some(2));
    one(&packages, "six");

    let tree = DirTree::single_file(&root.join("deps.pip"), &mut warnings).unwrap();
    assert!(
        catalog(&tree, &mut warnings).is_empty(),
        "not a requirements file name"
    );
    let path = tree.entries()[0].path.clone();
    let packages = catalog_as(&tree, &path, DeclaredKind::Requirements, &mut warnings);
    assert_eq!(one(&packages, "python3-dateutil").location.line, Some(1));
}
