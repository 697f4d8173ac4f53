//! Parsers of kernel files and policy values, on hostile input.

use std::time::Duration;

use pyward_respond::cgroup::{parse_proc_cgroup, CgroupFs};
use pyward_respond::policy::parse_duration;
use pyward_respond::process::ProcStat;

#[test]
fn mountinfo_finds_the_cgroup2_root_mount() {
    let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
50 31 0:38 /sub /bind/of/sub rw,relatime shared:9 - cgroup2 cgroup2 rw
41 31 0:38 / /sys/fs/cgroup/uni\\040fied rw,relatime shared:9 - cgroup2 cgroup2 rw
garbage line without separator
";
    let fs = CgroupFs::from_mountinfo(text).unwrap();
    assert_eq!(fs.mount(), std::path::Path::new("/sys/fs/cgroup/uni fied"));
    assert!(CgroupFs::from_mountinfo("31 23 0:28 / /x rw - tmpfs tmpfs rw\n\\\n").is_none());
    assert!(CgroupFs::from_mountinfo("").is_none());
    // The real one on this machine (cgroup v2 is mounted on every supported host).
    let real = CgroupFs::discover().unwrap();
    assert!(real.mount().join("cgroup.procs").exists());
}

#[test]
fn proc_cgroup_and_stat_parsing() {
    assert_eq!(
        parse_proc_cgroup("4:memory:/x\n0::/user.slice/s.scope (deleted)\n").as_deref(),
        Some("/user.slice/s.scope")
    );
    assert_eq!(parse_proc_cgroup("4:memory:/x\n"), None);
    // A command name with spaces and parentheses cannot shift the fields.
    let line = "1234 (evil) S 1 (x) R 99 1 1 0 -1 4194560 1 0 0 0 7 8 0 0 20 0 1 0 55555 0 0";
    let st = ProcStat::parse(line).unwrap();
    assert_eq!(
        (st.state, st.ppid, st.flags, st.starttime),
        ('R', 99, 4194560, 55555)
    );
    assert!(ProcStat::parse("1 (x").is_none());
    assert!(ProcStat::parse("1 (x) S notanumber").is_none());
    assert!(ProcStat::parse("").is_none());
    let me = pyward_respond::process::stat_of(std::process::id()).unwrap();
    assert!(!me.is_kthread() && me.starttime > 0);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    for bad in ["", "s", "-1s", "5 parsecs", "1e999s", "NaNs", "5x"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}
