use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A MITRE ATT&CK technique (or sub-technique) id with its name, e.g. `T1195.002`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MitreTechnique {
    pub id: Cow<'static, str>,
    pub name: Cow<'static, str>,
}

impl MitreTechnique {
    pub const fn new(id: &'static str, name: &'static str) -> Self {
        MitreTechnique {
            id: Cow::Borrowed(id),
            name: Cow::Borrowed(name),
        }
    }

    /// The technique's page on attack.mitre.org.
    pub fn url(&self) -> String {
        format!(
            "https://attack.mitre.org/techniques/{}/",
            self.id.replace('.', "/")
        )
    }
}

/// The ATT&CK techniques pyward's findings name, in one place for every crate.
pub mod techniques {
    use super::MitreTechnique;

    pub const SUPPLY_CHAIN_SOFTWARE: MitreTechnique = MitreTechnique::new(
        "T1195.002",
        "Supply Chain Compromise: Compromise Software Supply Chain",
    );
    pub const SUPPLY_CHAIN_DEPENDENCIES: MitreTechnique = MitreTechnique::new(
        "T1195.001",
        "Supply Chain Compromise: Compromise Software Dependencies and Development Tools",
    );
    pub const MASQUERADING_NAME: MitreTechnique = MitreTechnique::new(
        "T1036.005",
        "Masquerading: Match Legitimate Name or Location",
    );
    pub const PYTHON: MitreTechnique =
        MitreTechnique::new("T1059.006", "Command and Scripting Interpreter: Python");
    pub const PRIVATE_KEYS: MitreTechnique =
        MitreTechnique::new("T1552.004", "Unsecured Credentials: Private Keys");
    pub const EXFIL_C2: MitreTechnique =
        MitreTechnique::new("T1041", "Exfiltration Over C2 Channel");
    pub const INGRESS_TOOL_TRANSFER: MitreTechnique =
        MitreTechnique::new("T1105", "Ingress Tool Transfer");
    pub const OBFUSCATED_FILES: MitreTechnique =
        MitreTechnique::new("T1027", "Obfuscated Files or Information");
    pub const USER_EXECUTION_FILE: MitreTechnique =
        MitreTechnique::new("T1204.002", "User Execution: Malicious File");
    pub const FILE_DISCOVERY: MitreTechnique =
        MitreTechnique::new("T1083", "File and Directory Discovery");
    pub const DEOBFUSCATE: MitreTechnique =
        MitreTechnique::new("T1140", "Deobfuscate/Decode Files or Information");
    pub const CREDENTIALS_IN_FILES: MitreTechnique =
        MitreTechnique::new("T1552.001", "Unsecured Credentials: Credentials In Files");
    pub const WEB_PROTOCOLS: MitreTechnique =
        MitreTechnique::new("T1071.001", "Application Layer Protocol: Web Protocols");
    pub const WEB_SERVICE: MitreTechnique = MitreTechnique::new("T1102", "Web Service");
    pub const CLIPBOARD_DATA: MitreTechnique = MitreTechnique::new("T1115", "Clipboard Data");
    pub const STEGANOGRAPHY: MitreTechnique = MitreTechnique::new(
        "T1027.003",
        "Obfuscated Files or Information: Steganography",
    );
    pub const HIDDEN_WINDOW: MitreTechnique =
        MitreTechnique::new("T1564.003", "Hide Artifacts: Hidden Window");
    pub const FILE_DELETION: MitreTechnique =
        MitreTechnique::new("T1070.004", "Indicator Removal: File Deletion");
    pub const DATA_ENCRYPTED: MitreTechnique =
        MitreTechnique::new("T1486", "Data Encrypted for Impact");
    pub const UNIX_SHELL: MitreTechnique =
        MitreTechnique::new("T1059.004", "Command and Scripting Interpreter: Unix Shell");
    pub const RESOURCE_HIJACKING: MitreTechnique =
        MitreTechnique::new("T1496", "Resource Hijacking");
    pub const CRON: MitreTechnique = MitreTechnique::new("T1053.003", "Scheduled Task/Job: Cron");
    pub const SHELL_CONFIG_MODIFICATION: MitreTechnique = MitreTechnique::new(
        "T1546.004",
        "Event Triggered Execution: Unix Shell Configuration Modification",
    );
    pub const SYSTEMD_SERVICE: MitreTechnique = MitreTechnique::new(
        "T1543.002",
        "Create or Modify System Process: Systemd Service",
    );
    pub const AUTOSTART: MitreTechnique =
        MitreTechnique::new("T1547", "Boot or Logon Autostart Execution");
    pub const TRANSMITTED_DATA_MANIPULATION: MitreTechnique = MitreTechnique::new(
        "T1565.002",
        "Data Manipulation: Transmitted Data Manipulation",
    );
    pub const LOCATION_DISCOVERY: MitreTechnique =
        MitreTechnique::new("T1614", "System Location Discovery");
    pub const EXPLOIT_PUBLIC_APP: MitreTechnique =
        MitreTechnique::new("T1190", "Exploit Public-Facing Application");
    pub const EXTERNAL_REMOTE_SERVICES: MitreTechnique =
        MitreTechnique::new("T1133", "External Remote Services");
    pub const SSH_AUTHORIZED_KEYS: MitreTechnique =
        MitreTechnique::new("T1098.004", "Account Manipulation: SSH Authorized Keys");
    pub const NETWORK_SNIFFING: MitreTechnique = MitreTechnique::new("T1040", "Network Sniffing");
    pub const PASSWORD_CRACKING: MitreTechnique =
        MitreTechnique::new("T1110.002", "Brute Force: Password Cracking");
    pub const DRIVE_BY: MitreTechnique = MitreTechnique::new("T1189", "Drive-by Compromise");
    pub const MUTUAL_EXCLUSION: MitreTechnique =
        MitreTechnique::new("T1480.002", "Execution Guardrails: Mutual Exclusion");
    pub const SSH_REMOTE_SERVICE: MitreTechnique =
        MitreTechnique::new("T1021.004", "Remote Services: SSH");
}
