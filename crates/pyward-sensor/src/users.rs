//! User and group names from /etc/passwd and /etc/group (read once, bounded).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Largest passwd/group file read.
const MAX_FILE: u64 = 4 << 20;

/// One passwd entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub home: String,
    pub shell: String,
}

/// uid → user, gid → group name.
#[derive(Clone, Debug, Default)]
pub struct Users {
    users: HashMap<u32, UserEntry>,
    groups: HashMap<u32, String>,
}

fn read(p: &Path) -> String {
    let mut s = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(MAX_FILE).read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

impl Users {
    /// Load the host's /etc/passwd and /etc/group; missing files give empty maps.
    pub fn load() -> Users {
        Users::from_files(Path::new("/etc/passwd"), Path::new("/etc/group"))
    }

    /// Load from given files (tests, other roots).
    pub fn from_files(passwd: &Path, group: &Path) -> Users {
        Users::parse(&read(passwd), &read(group))
    }

    /// Parse passwd and group texts; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> Users {
        let mut u = Users::default();
        for l in passwd.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let [name, _, uid, _, _, home, shell] = f.as_slice() {
                if let Ok(uid) = uid.parse() {
                    u.users.entry(uid).or_insert(UserEntry {
                        name: (*name).to_owned(),
                        home: (*home).to_owned(),
                        shell: (*shell).to_owned(),
                    });
                }
            }
        }
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let [name, _, gid, ..] = f.as_slice() {
                if let Ok(gid) = gid.parse() {
                    u.groups.entry(gid).or_insert_with(|| (*name).to_owned());
                }
            }
        }
        u
    }

    /// The user with this uid.
    pub fn user(&self, uid: u32) -> Option<&UserEntry> {
        self.users.get(&uid)
    }

    /// The name of the group with this gid.
    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_skips_malformed_lines() {
        let u = Users::parse(
            "root:x:0:0:root:/root:/bin/bash\nbad line\nalice:x:notanumber:1:::\nbob:x:1001:1001::/home/bob:/bin/sh\n",
            "root:x:0:\nstaff:x:50:alice,bob\n::\n",
        );
        assert_eq!(u.user(0).map(|e| e.name.as_str()), Some("root"));
        assert_eq!(u.user(1001).map(|e| e.home.as_str()), Some("/home/bob"));
        assert_eq!(u.user(1), None);
        assert_eq!(u.group(50), Some("staff"));
    }
}
