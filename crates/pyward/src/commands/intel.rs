use crate::cli::IntelCommand;
use anyhow::Context;
use pyward_intel::Intel;
use std::path::PathBuf;

fn db_path(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    arg.or_else(Intel::default_db_path).context(
        "no data folder found for the intel database: set PYWARD_DATA_DIR or pass --intel-db",
    )
}

pub fn run(cmd: IntelCommand) -> anyhow::Result<u8> {
    match cmd {
        IntelCommand::Import { path, intel_db } => {
            let db = db_path(intel_db)?;
            let stats = pyward_intel::import(&db, &path)
                .with_context(|| format!("cannot import {}", path.display()))?;
            println!("{stats}");
            println!("database: {}", db.display());
            Ok(crate::exit::PASS)
        }
        IntelCommand::Status { intel_db, json } => {
            let db = db_path(intel_db)?;
            let status = pyward_intel::status(&db)
                .with_context(|| format!("cannot read {}", db.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{status}");
            }
            Ok(crate::exit::PASS)
        }
    }
}
