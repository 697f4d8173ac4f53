//! Packages a Dockerfile installs: the requirements on its `pip install` lines, and the
//! requirements files its `pip install -r FILE` lines read, traced back through `COPY`/`ADD`
//! (and `RUN --mount=type=bind`) and `WORKDIR` to the build context, or read from the image.

use super::{classify, Cataloger, IncludedFrom};
use crate::dockerfile::{Copy, Dockerfile, PipRequirementFile, Scope};
use crate::tree::{clean_path, join_path, parent_path, FileTree, ReadError};
use pyward_core::{DeclaredKind, Location, Package, Warning};
use std::collections::HashMap;

/// Most `pip install -r` files traced per Dockerfile (each costs a pass over its COPYs).
const MAX_REQUIREMENT_FILES: usize = 256;

/// Where the files a Dockerfile's `pip install -r FILE` reads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerContext<'a> {
    /// A Dockerfile in a folder: `dir` is the tree path of the folder holding it, taken as the
    /// build context; `-r` files are traced back through COPY/ADD to files under `dir`.
    BuildContext { dir: &'a str },
    /// A Dockerfile reconstructed from an image's history: `-r` paths are paths inside the
    /// image (`tree`), relative to the WORKDIR in effect at the RUN line.
    Image,
}

/// The packages `df` installs. Named packages get [`DeclaredKind::Dockerfile`] and the RUN line
/// in `df_display`; packages of `-r` files get [`DeclaredKind::Requirements`] and their own file
/// and line. A `-r` file that [`super::catalog`] lists anyway (a `requirements*.txt` present in
/// `tree`) is not read again, so calling both does not list its packages twice.
pub fn packages_from_dockerfile(
    df: &Dockerfile,
    df_display: &str,
    tree: &dyn FileTree,
    context: DockerContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Vec<Package> {
    let mut cx = Cataloger::new(tree, warnings);
    for e in tree.entries() {
        if e.is_file() && classify(&e.path) == Some(DeclaredKind::Requirements) {
            cx.seen.insert(e.path.clone());
        }
    }
    cx.dockerfile(df, df_display, context);
    cx.out
}

impl Cataloger<'_> {
    pub(super) fn dockerfile(
        &mut self,
        df: &Dockerfile,
        df_display: &str,
        context: DockerContext<'_>,
    ) {
        let (installs, files) = df.pip_installs();
        for install in installs {
            // `pip install $PACKAGES`: the value is not in the Dockerfile.
            if install.requirement.contains('$') {
                continue;
            }
            let parsed = super::parse_spec(&install.requirement);
            if let Some(problem) = parsed.problem {
                self.warn(df_display, format!("line {}: {problem}", install.line));
            }
            if let Some(spec) = parsed.spec {
                let location = Location::new(df_display).with_line(install.line);
                self.push(spec, DeclaredKind::Dockerfile, location);
            }
        }
        if files.len() > MAX_REQUIREMENT_FILES {
            self.warn(
                df_display,
                format!(
                    "{} `pip install -r` files; only the first {MAX_REQUIREMENT_FILES} are read",
                    files.len()
                ),
            );
        }
        let plan = CopyPlan::new(df);
        for file in files.iter().take(MAX_REQUIREMENT_FILES) {
            self.dockerfile_requirements(&plan, df_display, file, context);
        }
    }

    fn dockerfile_requirements(
        &mut self,
        plan: &CopyPlan,
        df_display: &str,
        file: &PipRequirementFile,
        context: DockerContext<'_>,
    ) {
        let line = file.line;
        if file.path.contains("://") {
            self.warn(
                df_display,
                format!(
                    "line {line}: `-r {}` is a URL; pyward never fetches anything while scanning",
                    file.path
                ),
            );
            return;
        }
        if file.path.contains('$') {
            self.warn(
                df_display,
                format!(
                    "line {line}: `-r {}` depends on a variable; the file cannot be located, its \
                     packages are not listed",
                    file.path
                ),
            );
            return;
        }
        let from = IncludedFrom {
            display: df_display,
            line,
            how: "pip install -r reads",
        };
        match context {
            DockerContext::Image => {
                let Some(target) = join_path(&plan.scope(line).workdir, &file.path) else {
                    return;
                };
                if self.seen.contains(&target) {
                    return;
                }
                if matches!(self.tree.read(&target, 0), Err(ReadError::NotFound)) {
                    self.warn(
                        df_display,
                        format!(
                            "line {line}: `pip install -r {}` read `{target}`, which is no longer \
                             in the image (removed after the install?); its packages are not listed",
                            file.path
                        ),
                    );
                    return;
                }
                self.requirements_file(&target, 0, Some(from));
            }
            DockerContext::BuildContext { dir } => {
                let candidates = context_candidates(plan, file, dir);
                match candidates.iter().find(|c| exists(self.tree, c)) {
                    Some(found) => self.requirements_file(found, 0, Some(from)),
                    None => self.warn(
                        df_display,
                        format!(
                            "line {line}: `pip install -r {}` reads a file that no COPY/ADD of the \
                             build context `{}` provides (looked for {}); its packages are not \
                             listed",
                            file.path,
                            self.tree.display_path(dir),
                            candidates
                                .iter()
                                .map(|c| format!("`{}`", self.tree.display_path(c)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
        }
    }
}

/// Whether `path` is a file of the tree (also when the tree lists only some of its files, as a
/// single-file target does).
fn exists(tree: &dyn FileTree, path: &str) -> bool {
    tree.entry(path).is_some_and(|e| e.is_file())
        || matches!(tree.read(path, 0), Ok(_) | Err(ReadError::TooLarge { .. }))
}

/// Tree paths in the build context `dir` that the image path read by `file` may have been
/// copied from, most likely first: through the RUN's bind mounts, then the COPY/ADDs of the same
/// stage from the last back, then the same relative path next to the Dockerfile.
fn context_candidates(plan: &CopyPlan, file: &PipRequirementFile, dir: &str) -> Vec<String> {
    let run_line = file.line;
    let mut out: Vec<String> = Vec::new();
    let push = |p: Option<String>, out: &mut Vec<String>| {
        if let Some(p) = p.filter(|p| inside(dir, p)) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    };
    let scope = plan.scope(run_line);
    if let Some(target) = join_path(&scope.workdir, &file.path) {
        let mounts = plan
            .copies
            .iter()
            .filter(|c| c.mount && c.copy.line == run_line);
        let copies = plan
            .copies
            .iter()
            .rev()
            .filter(|c| !c.mount && c.copy.line < run_line && c.stage == scope.stage);
        for planned in mounts.chain(copies).filter(|c| c.copy.from_stage.is_none()) {
            for src in &planned.copy.sources {
                if src.contains("://") {
                    continue;
                }
                for p in copy_sources_for(&target, &planned.dest, planned.dest_is_dir, src, dir) {
                    push(Some(p), &mut out);
                }
            }
        }
    }
    // No COPY explains it: the same path in the context (e.g. `COPY . .` written with a
    // variable), then the file name next to the Dockerfile.
    push(join_path(dir, &file.path), &mut out);
    let base = file.path.rsplit('/').next().unwrap_or(&file.path);
    push(join_path(dir, base), &mut out);
    out
}

/// A COPY/ADD or RUN bind mount with its destination resolved, computed once per Dockerfile so
/// that tracing many `-r` files stays linear in the Dockerfile's size.
struct Planned {
    copy: Copy,
    dest: String,
    dest_is_dir: bool,
    stage: usize,
    /// A `RUN --mount=type=bind`: visible only during the RUN on `copy.line`.
    mount: bool,
}

struct CopyPlan {
    copies: Vec<Planned>,
    scopes: HashMap<u32, Scope>,
}

impl CopyPlan {
    fn new(df: &Dockerfile) -> Self {
        let scopes: HashMap<u32, Scope> = df
            .instructions
            .iter()
            .map(|i| i.line)
            .zip(df.scopes())
            .collect();
        let root = Scope {
            workdir: "/".to_string(),
            stage: 0,
        };
        let mut copies = Vec::new();
        for (copy, mount) in df
            .copies()
            .into_iter()
            .map(|c| (c, false))
            .chain(df.bind_mounts().into_iter().map(|c| (c, true)))
        {
            let scope = scopes.get(&copy.line).unwrap_or(&root);
            let (dest, dest_is_dir) = copy.resolved_dest(&scope.workdir);
            let stage = scope.stage;
            copies.push(Planned {
                copy,
                dest,
                dest_is_dir,
                stage,
                mount,
            });
        }
        CopyPlan { copies, scopes }
    }

    fn scope(&self, line: u32) -> Scope {
        self.scopes.get(&line).cloned().unwrap_or(Scope {
            workdir: "/".to_string(),
            stage: 0,
        })
    }
}

/// Context paths that a COPY of `src` to `dest` would have placed at image path `target`.
fn copy_sources_for(
    target: &str,
    dest: &str,
    dest_is_dir: bool,
    src: &str,
    dir: &str,
) -> Vec<String> {
    // Most COPYs have nothing to do with the target: rule them out without allocating.
    let related = dest == "/"
        || target == dest
        || target
            .strip_prefix(dest)
            .is_some_and(|r| r.starts_with('/'));
    if !related {
        return Vec::new();
    }
    let mut out: Vec<Option<String>> = Vec::new();
    let Some(src_path) = join_path(dir, src) else {
        return Vec::new();
    };
    let target_name = target.rsplit('/').next().unwrap_or(target);
    let src_name = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
    if src.contains(['*', '?', '[']) {
        // `COPY requirements*.txt /app/`: the file keeps its name.
        if parent_path(target) == dest && glob_match(src_name, target_name) {
            out.push(join_path(parent_path(&src_path), target_name));
        }
        return out.into_iter().flatten().collect();
    }
    // A file copied to exactly the target path.
    if !dest_is_dir && target == dest {
        out.push(Some(src_path.clone()));
    }
    // A file copied into a folder keeps its name.
    if dest_is_dir && parent_path(target) == dest && target_name == src_name {
        out.push(Some(src_path.clone()));
    }
    // A folder's contents copied into dest.
    let under = if dest == "/" {
        Some(target.trim_start_matches('/'))
    } else {
        target.strip_prefix(dest).and_then(|r| r.strip_prefix('/'))
    };
    if let Some(rel) = under.filter(|r| !r.is_empty()) {
        out.push(join_path(&src_path, rel));
    }
    out.into_iter().flatten().collect()
}

/// Whether tree path `p` is inside folder `dir` (Docker refuses sources outside the context).
fn inside(dir: &str, p: &str) -> bool {
    let Some(dir) = clean_path(dir) else {
        return false;
    };
    dir == "/" || p == dir || p.strip_prefix(&dir).is_some_and(|r| r.starts_with('/'))
}

/// Shell-style wildcard match of one path component (`*`, `?`; `[...]` matches one character).
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('[') => {
                let close = p.get(pi..).and_then(|r| r.iter().position(|&c| c == ']'));
                match close {
                    Some(end)
                        if p.get(pi + 1..pi + end)
                            .is_some_and(|set| n.get(ni).is_some_and(|c| set.contains(c))) =>
                    {
                        pi += end + 1;
                        ni += 1;
                    }
                    _ => match star {
                        Some((sp, sn)) => {
                            pi = sp + 1;
                            ni = sn + 1;
                            star = Some((sp, sn + 1));
                        }
                        None => return false,
                    },
                }
            }
            Some(&c) if c == '?' || n.get(ni) == Some(&c) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("requirements*.txt", "requirements-dev.txt"));
        assert!(glob_match("*.txt", "a.txt"));
        assert!(glob_match("r?q.[tx]xt", "req.txt"));
        assert!(!glob_match("*.txt", "a.toml"));
        assert!(!glob_match("a", "ab"));
    }

    fn cands(df: &str, dir: &str) -> Vec<String> {
        let df = Dockerfile::parse(df);
        let (_, files) = df.pip_installs();
        context_candidates(&CopyPlan::new(&df), &files[0], dir)
    }

    #[test]
    fn copies_map_back() {
        assert_eq!(
            cands("FROM p\nCOPY requirements.txt /app/\nWORKDIR /app\nRUN pip install -r requirements.txt", "/proj")[0],
            "/proj/requirements.txt"
        );
        assert_eq!(
            cands(
                "FROM p\nWORKDIR /srv\nCOPY deps/prod.txt ./reqs.txt\nRUN pip install -r reqs.txt",
                "/proj"
            )[0],
            "/proj/deps/prod.txt"
        );
        assert_eq!(
            cands(
                "FROM p\nCOPY src/ /code\nRUN pip install -r /code/conf/r.txt",
                "/"
            )[0],
            "/src/conf/r.txt"
        );
        assert_eq!(
            cands(
                "FROM p\nCOPY req*.txt /tmp/\nRUN pip install -r /tmp/req-prod.txt",
                "/c"
            )[0],
            "/c/req-prod.txt"
        );
        assert_eq!(
            cands(
                "FROM p\nRUN --mount=type=bind,source=ci/r.txt,target=/r.txt pip install -r /r.txt",
                "/c"
            )[0],
            "/c/ci/r.txt"
        );
        // Sources outside the context are never candidates.
        assert!(
            cands("FROM p\nCOPY ../../etc/x /x\nRUN pip install -r /x", "/c/d")
                .iter()
                .all(|c| c.starts_with("/c/d/"))
        );
    }
}
