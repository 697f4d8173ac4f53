// Reverse shells seen in malicious PyPI uploads and in the usual cheat sheets.
// Reference: GuardDog v3 threat-network-reverse-shell; MITRE T1059.004.

rule pyward_python_reverse_shell
{
    meta:
        description = "socket connected back and duplicated onto stdin/stdout/stderr of a shell"
        mitre = "T1059.004,T1071"
        severity = "critical"
        kind = "threat"
    strings:
        $sock = /socket\.socket\s*\(/
        $conn = /\.connect\s*\(\s*\(/
        $dup = /dup2\s*\(\s*[A-Za-z_][A-Za-z0-9_.]*\.fileno\s*\(\s*\)\s*,\s*[0-2]\s*\)/
        $sh1 = "/bin/sh" ascii
        $sh2 = "/bin/bash" ascii
        $pty = /pty\.spawn\s*\(/
    condition:
        $sock and $conn and $dup and ($sh1 or $sh2 or $pty)
}

rule pyward_shell_reverse_shell_string
{
    meta:
        description = "a shell one-liner reverse shell (bash /dev/tcp, nc -e, mkfifo | nc)"
        mitre = "T1059.004"
        severity = "critical"
        kind = "threat"
    strings:
        $devtcp = /(bash|sh)\s+-i\s*>&?\s*\/dev\/tcp\/[0-9A-Za-z.\-]{3,}\/[0-9]{1,5}/
        $nce = /\bn(c|cat)\s+(-[a-z]+\s+)*-e\s+\/bin\/(ba)?sh\b/
        $fifo = /mkfifo\s+\/tmp\/[A-Za-z0-9_.]+\s*;\s*(cat|nc)\b[^\n]{0,40}\|\s*\/bin\/(ba)?sh\s+-i/
    condition:
        any of them
}
