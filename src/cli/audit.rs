//! `tokenvault audit verify|export`, offline on the data directory.

use super::Report;
use crate::audit::Actor;
use crate::store::Backend;
use crate::vault::keys::kek::Kek;
use crate::vault::Vault;
use std::io::Write;
use std::path::Path;

fn open(config_path: Option<&Path>) -> Result<(tokio::runtime::Runtime, Vault<Backend>), String> {
    let config = super::load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let vault = runtime.block_on(async {
        let store = Backend::open(&config.data_dir, &config.store)
            .await
            .map_err(|e| format!("{e} (is the service running? stop it, or use GET /v1/audit/verify)"))?;
        let kek = Kek::from_dev_file(&config.kek_file()).map_err(|e| e.to_string())?;
        let vault_config = crate::vault::VaultConfig::from_settings(&config).map_err(|e| e.to_string())?;
        Vault::open(store, kek, vault_config)
            .await
            .map_err(|e| e.to_string())
    })?;
    Ok((runtime, vault))
}

pub(super) fn verify(config_path: Option<&Path>) -> Result<Report, String> {
    let (runtime, vault) = open(config_path)?;
    let report = runtime
        .block_on(vault.audit_verify(&Actor::local("audit-verify")))
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for (chain, r) in &report.chains {
        lines.push(match &r.first_break {
            None => format!("{chain}: intact, {} records, head at {}", r.records, r.head_seq),
            Some(b) => format!("{chain}: BROKEN: {b} (records checked: {})", r.records),
        });
    }
    Ok(match report.first_break() {
        None => Report::ok(format!(
            "audit chain intact: {} records in {} chain(s)\n{}",
            report.records(),
            report.chains.len(),
            lines.join("\n")
        )),
        Some((chain, b)) => Report {
            message: format!("AUDIT CHAIN BROKEN: {b} in {chain}\n{}", lines.join("\n")),
            code: 1,
        },
    })
}

pub(super) fn export(config_path: Option<&Path>, out: Option<&Path>) -> Result<Report, String> {
    let (runtime, vault) = open(config_path)?;
    let records = runtime
        .block_on(vault.audit_export(&Actor::local("audit-export")))
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut lines, &record.export_line()).map_err(|e| e.to_string())?;
        lines.push(b'\n');
    }
    match out {
        Some(path) => {
            std::fs::write(path, &lines).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Report::ok(format!(
                "{} audit records written to {}",
                records.len(),
                path.display()
            )))
        }
        None => {
            std::io::stdout().write_all(&lines).map_err(|e| e.to_string())?;
            Ok(Report::ok(""))
        }
    }
}
