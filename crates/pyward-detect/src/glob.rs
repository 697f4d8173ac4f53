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
        let literal = prefix.chars().count() == toks.len();
        Glob {
            text: pattern.to_owned(),
            toks,
            prefix,
            literal,
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
        if !s.starts_with(&self.prefix) {
            return false;
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
    }
}
