//! `tokenvault audit verify|export|anchor-key`, offline on the data directory.

use super::Report;
use crate::audit::anchor::{AnchorPublicKey, SignedAnchor};
use crate::audit::Actor;
use crate::store::Backend;
use crate::vault::keys::kek::Kek;
use crate::vault::Vault;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The checkpoints in `files`, each parsed and its signature checked
/// against `trusted`; the first that fails names its file.
fn read_checkpoints(files: &[PathBuf], trusted: &[AnchorPublicKey]) -> Result<Vec<SignedAnchor>, String> {
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let anchor = SignedAnchor::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            anchor
                .verify_any(trusted)
                .map_err(|e| format!("CHECKPOINT REFUSED: {}: {e}", path.display()))?;
            Ok(anchor)
        })
        .collect()
}

pub(super) fn verify(
    config_path: Option<&Path>,
    checkpoints: &[PathBuf],
    anchor_keys: &[PathBuf],
) -> Result<Report, String> {
    let (runtime, vault) = open(config_path)?;
    let trusted = if anchor_keys.is_empty() {
        vault
            .anchor_public_keys()
            .into_iter()
            .map(|(_, key)| key)
            .collect()
    } else {
        anchor_keys
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                AnchorPublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let anchors = match read_checkpoints(checkpoints, &trusted) {
        Ok(anchors) => anchors,
        Err(message) => return Ok(Report { message, code: 1 }),
    };
    let report = runtime
        .block_on(vault.audit_verify_anchored(&Actor::local("audit-verify"), &anchors))
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for (chain, r) in &report.chains {
        lines.push(match &r.first_break {
            None => format!("{chain}: intact, {} records, head at {}", r.records, r.head_seq),
            Some(b) => format!("{chain}: BROKEN: {b} (records checked: {})", r.records),
        });
    }
    if !anchors.is_empty() {
        lines.push(format!(
            "{} signed checkpoint(s) checked against the pinned key(s) {}",
            anchors.len(),
            trusted
                .iter()
                .map(AnchorPublicKey::to_hex)
                .collect::<Vec<_>>()
                .join(", ")
        ));
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

pub(super) fn anchor_key(config_path: Option<&Path>, all: bool) -> Result<Report, String> {
    let (_runtime, vault) = open(config_path)?;
    if !all {
        return Ok(Report::ok(vault.anchor_public_key().to_pem().trim_end()));
    }
    let pems: Vec<String> = vault
        .anchor_public_keys()
        .iter()
        .map(|(_, key)| key.to_pem().trim_end().to_owned())
        .collect();
    Ok(Report::ok(pems.join("\n")))
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
