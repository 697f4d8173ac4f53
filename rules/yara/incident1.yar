// Incident 1 (jeIlyfish / python3-dateutil, 2019): base64+zlib-compressed Python executed at import,
// second stage from a hard-coded IP that reads ~/.ssh and ~/.gnupg.
// Reference: https://github.com/dateutil/dateutil/issues/984 (report by Lukas Martini, 2019-12-01).

rule pyward_exec_compressed_base64
{
    meta:
        description = "exec/eval of a base64 blob decompressed with zlib, bz2 or lzma (jeIlyfish-style loader)"
        mitre = "T1027,T1140,T1059.006"
        severity = "high"
        kind = "threat"
        reference = "https://github.com/dateutil/dateutil/issues/984"
    strings:
        $exec1 = /\b(exec|eval)\s*\(\s*(__import__\(\s*['"](zlib|bz2|lzma)['"]\s*\)|zlib|bz2|lzma|_?z)\.decompress\s*\(/
        $exec2 = /\b(exec|eval)\s*\(\s*marshal\.loads\s*\(\s*(zlib|bz2|lzma)\.decompress\s*\(/
        $b64 = /(b64decode|decodebytes|a2b_base64|standard_b64decode)\s*\(/
        $imp = /__import__\(\s*['"]base64['"]\s*\)/
    condition:
        ($exec1 or $exec2) and ($b64 or $imp)
}

rule pyward_jeilyfish_ioc
{
    meta:
        description = "the jeIlyfish second-stage server address (incident 1 IOC, matched as data)"
        mitre = "T1071.001,T1105"
        severity = "critical"
        kind = "threat"
        reference = "https://github.com/dateutil/dateutil/issues/984"
    strings:
        $ip = "68.183.212.246"
    condition:
        $ip
}

rule pyward_key_dirs_with_upload
{
    meta:
        description = "walks ~/.ssh and ~/.gnupg and uploads what it finds (incident 1 second stage)"
        mitre = "T1552.004,T1041"
        severity = "critical"
        kind = "threat"
    strings:
        $ssh = ".ssh" ascii
        $gpg = ".gnupg" ascii
        $walk = /\b(os\.walk|listdir|scandir|glob)\s*\(/
        $up1 = /urlopen\s*\([^)\n]{0,100}data\s*=/
        $up2 = /requests\.(post|put)\s*\(/
        $up3 = /\.sendall?\s*\(/
    condition:
        $ssh and $gpg and $walk and any of ($up*)
}
