//! The queue across runs: every run of a channel and date, and the
//! discrepancies still open (or already resolved) whichever run found
//! them, a page at a time, each listing audited as a read.

use super::super::{layout, OrchestrationError, Orchestrator};
use super::history::number_after;
use super::matcher::Finding;
use super::resolve::{DiscrepancyId, DiscrepancyView};
use super::run::{RunRecord, RunView};
use super::RunId;
use crate::audit::{Actor, Outcome};
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::store::{keyspace, Store};
use crate::vault::{decode, Layer, Vault, VaultError};
use std::collections::BTreeMap;

/// Which discrepancies a listing wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscrepancyState {
    Open,
    Resolved,
}

/// A run without its discrepancies, as a listing shows it.
pub type RunSummary = RunView;

/// A discrepancy with the channel and date of the run that found it.
pub struct QueuedDiscrepancy {
    pub discrepancy: DiscrepancyView,
    pub channel: ChannelId,
    pub date: String,
}

impl Orchestrator {
    /// Runs, newest date first (a date's latest version first), of
    /// `channel` and `date` where given, at most `limit`.
    pub async fn reconciliation_runs<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: Option<&ChannelId>,
        date: Option<SettlementDate>,
        limit: usize,
    ) -> Result<Vec<RunSummary>, OrchestrationError> {
        let prefix = match (channel, date) {
            (Some(c), Some(d)) => layout::recon_dates_prefix(c, &d.to_string()),
            (Some(c), None) => keyspace::RECON_DATE.key(format_args!("{}/", c.as_str())),
            (None, _) => keyspace::RECON_DATE.as_bytes().to_vec(),
        };
        let wanted_date = date.map(|d| format!("/{d}/"));
        let mut index: Vec<(String, u32, Vec<u8>)> = Vec::new();
        vault
            .store_view(Layer::Orchestration)
            .for_each_under(&prefix, |key, raw| {
                let text = std::str::from_utf8(key).map_err(|_| VaultError::Corrupt { what: "run index" })?;
                if wanted_date.as_ref().is_some_and(|d| !text.contains(d.as_str())) {
                    return Ok(());
                }
                let mut parts = text.rsplitn(3, '/');
                let version = parts.next().and_then(|v| v.parse().ok());
                let date = parts.next();
                let (Some(version), Some(date)) = (version, date) else {
                    return Err(VaultError::Corrupt { what: "run index" });
                };
                index.push((date.to_owned(), version, raw.to_vec()));
                Ok(())
            })
            .await?;
        index.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
        let mut runs = Vec::new();
        for (_, _, raw) in index.into_iter().take(limit) {
            let id = std::str::from_utf8(&raw)
                .ok()
                .and_then(|t| RunId::parse(t).ok())
                .ok_or(VaultError::Corrupt { what: "run index" })?;
            runs.push(self.load_run_record(vault, &id).await?.view(Vec::new()));
        }
        read_recorded(vault, actor, format!("listed runs={}", runs.len())).await?;
        Ok(runs)
    }

    /// Discrepancies in `state`, of `channel` where given, after `after`,
    /// at most `limit`, in the order of their ids.
    pub async fn reconciliation_discrepancies<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        state: DiscrepancyState,
        channel: Option<&ChannelId>,
        after: Option<&DiscrepancyId>,
        limit: usize,
    ) -> Result<Vec<QueuedDiscrepancy>, OrchestrationError> {
        let view = vault.store_view(Layer::Orchestration);
        let (family, key_of): (_, fn(&RunId, u64) -> Vec<u8>) = match state {
            DiscrepancyState::Open => (keyspace::RECON_OPEN, layout::recon_open),
            DiscrepancyState::Resolved => (keyspace::RECON_RESOLUTION, layout::recon_resolution),
        };
        let prefix = family.as_bytes();
        let mut cursor = after.map(|a| key_of(&a.run, a.n));
        let mut runs: BTreeMap<RunId, RunRecord> = BTreeMap::new();
        let mut found = Vec::new();
        'pages: loop {
            let page = view
                .scan_prefix(prefix, cursor.as_deref(), limit.max(64))
                .await
                .map_err(VaultError::from)?;
            let Some((last, _)) = page.last() else { break };
            cursor = Some(last.clone());
            let full = page.len() == limit.max(64);
            for (key, _) in page {
                let id = discrepancy_of_key(&key, prefix.len())?;
                if !runs.contains_key(&id.run) {
                    let record = self.load_run_record(vault, &id.run).await?;
                    runs.insert(id.run.clone(), record);
                }
                let Some(run) = runs.get(&id.run) else { continue };
                if channel.is_some_and(|c| *c != run.channel) {
                    continue;
                }
                let raw = view
                    .get(&layout::recon_discrepancy(&id.run, id.n))
                    .await
                    .map_err(VaultError::from)?
                    .ok_or(VaultError::Corrupt {
                        what: "listed discrepancy without its finding",
                    })?;
                let finding: Finding = decode(&raw, "discrepancy")?;
                let resolution = match state {
                    DiscrepancyState::Open => None,
                    DiscrepancyState::Resolved => self.resolution_of(vault, &id.run, id.n).await?,
                };
                found.push(QueuedDiscrepancy {
                    channel: run.channel.clone(),
                    date: run.date.clone(),
                    discrepancy: DiscrepancyView {
                        id,
                        finding,
                        resolution,
                    },
                });
                if found.len() == limit {
                    break 'pages;
                }
            }
            if !full {
                break;
            }
        }
        let state = match state {
            DiscrepancyState::Open => "open",
            DiscrepancyState::Resolved => "resolved",
        };
        let detail = format!("listed {state} discrepancies={}", found.len());
        read_recorded(vault, actor, detail).await?;
        Ok(found)
    }
}

/// The audit record of a reconciliation read that names no one object.
pub(super) async fn read_recorded<S: Store>(
    vault: &Vault<S>,
    actor: &Actor,
    detail: String,
) -> Result<(), VaultError> {
    vault
        .record_outcome(
            actor,
            Operation::ReconciliationRead,
            None,
            Outcome::Success,
            Some(detail),
        )
        .await
}

/// `<run>/<n>` of a queue or resolution key after its family's prefix.
fn discrepancy_of_key(key: &[u8], prefix_len: usize) -> Result<DiscrepancyId, VaultError> {
    let corrupt = || VaultError::Corrupt {
        what: "discrepancy key",
    };
    let rest = std::str::from_utf8(&key[prefix_len..]).map_err(|_| corrupt())?;
    let (run, _) = rest.split_once('/').ok_or_else(corrupt)?;
    let run = RunId::parse(run).map_err(|_| corrupt())?;
    let n = number_after(key, prefix_len + run.as_str().len() + 1, "discrepancy key")?;
    Ok(DiscrepancyId { run, n })
}
