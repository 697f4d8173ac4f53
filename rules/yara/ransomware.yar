// Incident 2 (Python ransomware on an exposed Jupyter server): marker file, mass encryption,
// ransom note, self-deletion.

rule pyward_jupyter_ransomware_marker
{
    meta:
        description = "the incident-2 ransomware marker file /tmp/f1gl6i6z (matched as data)"
        mitre = "T1486"
        severity = "critical"
        kind = "threat"
    strings:
        $m = "/tmp/f1gl6i6z" ascii
    condition:
        $m
}

rule pyward_ransom_note
{
    meta:
        description = "ransom note text next to file encryption"
        mitre = "T1486,T1491"
        severity = "high"
        kind = "threat"
    strings:
        $n1 = "files have been encrypted" nocase
        $n2 = "files are encrypted" nocase
        $n3 = /[Ss]end\s+[0-9.]+\s*(BTC|[Bb]itcoin|XMR|[Mm]onero)/
        $n4 = "decrypt your files" nocase
        $c1 = "encrypt" ascii
        // XOR with a key, as literals: the regex /\^\s*(key|k)\b/ left yara-x a one-byte
        // atom (`^`) that made the shipped rules scan ordinary code twice as slowly.
        $c2 = "^ key" ascii
        $c3 = "^key" ascii
        $c4 = "^= key" ascii
        $c5 = "^=key" ascii
        $c6 = " ^ k)" ascii
        $c7 = " ^ k " ascii
        $c8 = " ^ k]" ascii
        $c9 = " ^ k\n" ascii
    condition:
        any of ($n*) and any of ($c*)
}
