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

/// Techniques used across pyward's static findings.
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
}
