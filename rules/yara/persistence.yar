// Persistence and Windows download cradles used by PyPI droppers.

rule pyward_powershell_cradle
{
    meta:
        description = "hidden/encoded PowerShell or a download cradle"
        mitre = "T1059.001,T1105,T1564.003"
        severity = "high"
        kind = "threat"
    strings:
        $enc = /[Pp]ower[Ss]hell(\.exe)?\s+[^\n]{0,30}-([Ee]|[Ee]n|[Ee]nc|[Ee]ncoded[Cc]ommand)\s+[A-Za-z0-9+\/=]{16,}/
        $iex = /(IEX|iex|Invoke-Expression)\s*\(\s*(New-Object\s+Net\.WebClient|iwr|Invoke-WebRequest)/
        $dl = /New-Object\s+(System\.)?Net\.WebClient\)?\.Download(String|File)\s*\(/
    condition:
        any of them
}

rule pyward_cron_or_rc_append
{
    meta:
        description = "appends a command to a shell rc file or the crontab"
        mitre = "T1546.004,T1053.003"
        severity = "high"
        kind = "threat"
    strings:
        $rc = /open\s*\([^)\n]{0,60}\.(bashrc|zshrc|profile|bash_profile)['"]?\s*\)?[^)\n]{0,20},\s*['"]a/
        $cron = /(crontab\s+-l[^\n]{0,40}\|\s*crontab\s+-|\/etc\/cron\.d\/|\/var\/spool\/cron)/
    condition:
        any of them
}
