//! Shell-style globs for allowlists and decoy paths: `*` (anything but `/`), `**` (anything,
//! `/` included), `?` (one character but `/`). No character classes: paths and process names
//! in configuration do not need them, and a smaller language has fewer surprises.

/// A compiled glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    toks: Vec<Tok>,
    /// Literal text before the first wildcard: a cheap first test.
    prefix: String,
    /// No wildcard at all: plain equality.
    literal: bool,
    /// Literal prefix then one trailing `*` (`Some(false)`) or `**` (`Some(true)`): the
    /// common `jupyter*`, `/tmp/**` shapes, matched without the general algorithm.
    prefix_star: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,   // ?
    Star,  // *
    DStar, // **
}

impl Glob {
    /// Compile `pattern`; every string is a valid glob.
    pub fn new(pattern: &str) -> Glob {
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' if it.peek() == Some(&'*') => {
                    it.next();
                    while it.peek() == Some(&'*') {
                        it.next();
                    }
                    toks.push(Tok::DStar);
                }
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                c => toks.push(Tok::Lit(c)),
            }
        }
        let prefix: String = toks
            .iter()
            .map_while(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        let n_prefix = prefix.chars().count();
        let literal = n_prefix == toks.len();
        let prefix_star = match toks.get(n_prefix..) {
            Some([Tok::Star]) => Some(false),
            Some([Tok::DStar]) => Some(true),
            _ => None,
        };
        Glob {
            text: pattern.to_owned(),
            toks,
            prefix,
            literal,
            prefix_star,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `s` matches the whole pattern. O(pattern × text), no recursion.
    pub fn matches(&self, s: &str) -> bool {
        if self.literal {
            return s == self.text;
        }
        let Some(rest) = s.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        match self.prefix_star {
            Some(true) => return true,
            Some(false) => return !rest.contains('/'),
            None => {}
        }
        let text: Vec<char> = s.chars().collect();
        let n = text.len();
        // reach[j]: pattern prefix processed so far can end at text position j.
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for tok in &self.toks {
            let mut next = vec![false; n + 1];
            match tok {
                Tok::Lit(c) => {
                    for j in 0..n {
                        if reach[j] && text[j] == *c {
                            next[j + 1] = true;
                        }
                    }
                }
                Tok::Any => {
                    for j in 0..n {
                        if reach[j] && text[j] != '/' {
                            next[j + 1] = true;
                        }
                    }
                }
                Tok::Star | Tok::DStar => {
                    let cross = matches!(tok, Tok::DStar);
                    let mut on = false;
                    for j in 0..=n {
                        if reach[j] {
                            on = true;
                        }
                        next[j] = on;
                        if j < n && !cross && text[j] == '/' {
                            on = false;
                        }
                    }
                }
            }
            if !next.iter().any(|&b| b) {
                return false;
            }
            reach = next;
        }
        reach[n]
    }
}

/// True if any glob of `globs` matches `s`.
pub(crate) fn any_match(globs: &[Glob], s: &str) -> bool {
    globs.iter().any(|g| g.matches(s))
}

/// Globs asked about on every event (process-tree boundaries): the literal ones in a hash set,
/// the rest tried in turn.
#[derive(Clone, Debug, Default)]
pub(crate) struct GlobSet {
    literals: std::collections::HashSet<String>,
    patterns: Vec<Glob>,
}

impl GlobSet {
    pub(crate) fn new(globs: &[Glob]) -> GlobSet {
        let mut set = GlobSet::default();
        for g in globs {
            if g.literal {
                set.literals.insert(g.text.clone());
            } else {
                set.patterns.push(g.clone());
            }
        }
        set
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        self.literals.contains(s) || any_match(&self.patterns, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars() {
        assert!(Glob::new("python*").matches("python3.12"));
        assert!(!Glob::new("python*").matches("ipython"));
        assert!(Glob::new("/tmp/*").matches("/tmp/x"));
        assert!(!Glob::new("/tmp/*").matches("/tmp/a/x"));
        assert!(Glob::new("/tmp/**").matches("/tmp/a/x"));
        assert!(Glob::new("**/site-packages/**").matches("/v/lib/python3/site-packages/a/b.py"));
        assert!(Glob::new("/home/*/.decoy?").matches("/home/bob/.decoy1"));
        assert!(!Glob::new("/home/*/.decoy?").matches("/home/bob/.decoy12"));
        assert!(Glob::new("").matches(""));
        assert!(!Glob::new("a").matches(""));
        assert!(Glob::new("**").matches("/any/thing"));
        assert!(Glob::new("jupyter*").matches("jupyter"));
        assert!(!Glob::new("jupyter*").matches("jupyte"));
        assert!(!Glob::new("a/*").matches("a/b/c"));
        assert!(Glob::new("a/**").matches("a/b/c"));
    }

    #[test]
    fn sets_match_as_their_globs() {
        let globs: Vec<Glob> = ["sshd", "tmux*", "runc:*", "/x/**", "a?c"]
            .iter()
            .map(|p| Glob::new(p))
            .collect();
        let set = GlobSet::new(&globs);
        for s in [
            "sshd",
            "sshd2",
            "tmux",
            "tmux: server",
            "runc:[1:CHILD]",
            "/x/y/z",
            "abc",
            "ac",
            "",
        ] {
            assert_eq!(set.matches(s), any_match(&globs, s), "{s:?}");
        }
    }
}
