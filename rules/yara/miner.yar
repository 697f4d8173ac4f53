// Crypto-miners dropped by malicious packages (xmrig downloads, stratum pools).
// Reference: GuardDog v3 threat-process-cryptomining; MITRE T1496.

rule pyward_crypto_miner
{
    meta:
        description = "crypto-miner: a stratum pool URL, xmrig, or well-known mining pools"
        mitre = "T1496"
        severity = "high"
        kind = "threat"
    strings:
        $stratum = /stratum2?\+(tcp|ssl|tls):\/\//
        $xmrig = "xmrig" nocase
        $donate = "--donate-level" ascii
        $pool1 = "pool.minexmr.com" ascii
        $pool2 = "supportxmr.com" ascii
        $pool3 = "nanopool.org" ascii
        $pool4 = "moneroocean.stream" ascii
        $pool5 = "2miners.com" ascii
        $algo = /\b([Cc]ryptonight|[Rr]andom[Xx]|rx\/0)\b/
    condition:
        $stratum or ($xmrig and ($donate or $algo or any of ($pool*))) or 2 of ($pool*)
}
