// Credential and key files read and sent out (W4SP, ctx, Discord/Telegram stealers).
// Reference: GuardDog v3 threat-filesystem-read, threat-network-exfil-messenger.

rule pyward_cloud_credentials_exfil
{
    meta:
        description = "reads cloud or package-registry credential files and posts data over HTTP"
        mitre = "T1552.001,T1041"
        severity = "critical"
        kind = "threat"
    strings:
        $f1 = ".aws/credentials" ascii
        $f2 = ".docker/config.json" ascii
        $f3 = ".kube/config" ascii
        $f4 = ".git-credentials" ascii
        $f5 = ".pypirc" ascii
        $f6 = ".npmrc" ascii
        $f7 = "gcloud/credentials.db" ascii
        $f8 = ".azure/accessTokens.json" ascii
        $post1 = /requests\.(post|put)\s*\(/
        $post2 = /urlopen\s*\([^)\n]{0,100}data\s*=/
        $post3 = "discord.com/api/webhooks/" ascii
        $post4 = "api.telegram.org/bot" ascii
    condition:
        any of ($f*) and any of ($post*)
}

rule pyward_discord_token_stealer
{
    meta:
        description = "Discord token stealer: browser/Discord leveldb stores plus a token regex or a webhook"
        mitre = "T1528,T1555.003,T1567"
        severity = "critical"
        kind = "threat"
        reference = "https://blog.phylum.io/w4sp-stealer-in-pypi/ (W4SP)"
    strings:
        $ldb = /Local Storage[\\\/]{1,2}leveldb/
        $disc = /[Dd]iscord(canary|ptb)?[\\\/]{1,2}Local Storage/
        $re = /\[\\w-\]\{24(,26)?\}\\\.\[\\w-\]\{6\}\\\.\[\\w-\]\{2[57]/
        $hook = /discord(app)?\.com\/api\/webhooks\/[0-9]{6,}/
    condition:
        $ldb and ($disc or $re or $hook)
}

rule pyward_browser_password_store
{
    meta:
        description = "reads Chromium 'Login Data' and decrypts its key from 'Local State' (browser password theft)"
        mitre = "T1555.003"
        severity = "high"
        kind = "threat"
    strings:
        $login = "Login Data" ascii
        $state = "Local State" ascii
        $key = "encrypted_key" ascii
        $dpapi = "CryptUnprotectData" ascii
    condition:
        $login and $state and ($key or $dpapi)
}

rule pyward_shadow_file_read
{
    meta:
        description = "reads /etc/shadow"
        mitre = "T1003.008"
        severity = "medium"
        kind = "capability"
    strings:
        $s = /open\s*\(\s*['"]\/etc\/shadow['"]/
    condition:
        $s
}
