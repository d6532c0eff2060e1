//! The sweep of remembered answers past `limits.idempotency_ttl_s`: a
//! pass walks the `idempotency/` family a page at a time and deletes each
//! page's expired records in one write with one audit record. Each delete
//! is conditional on the record being the one read, so a key reused
//! meanwhile (its new answer replacing the expired one) keeps its answer.
//! Pages are small and paced so live writes are never queued behind a
//! sweep.

use super::idempotency::{is_expired, remembered_at};
use super::App;
use crate::audit::{Actor, Outcome};
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::keyspace;
use crate::store::Batch;
use crate::vault::{Layer, VaultError};
use std::time::Duration;

/// Records looked at per page; a page's deletes are one write.
const PAGE: usize = 256;
/// Between pages, so a pass over many records leaves the committer to traffic.
const PAUSE: Duration = Duration::from_millis(5);
/// A page whose write conflicts (a key reused while it was read) is read
/// again, at most this many times, before the pass moves on.
const PAGE_ATTEMPTS: usize = 3;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepPass {
    pub scanned: u64,
    pub swept: u64,
}

impl App {
    /// One pass over every remembered answer, as `actor`.
    pub async fn sweep_idempotency(&self, actor: &Actor) -> Result<SweepPass, VaultError> {
        let mut pass = SweepPass::default();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let (page, next) = self.sweep_page(actor, after.as_deref()).await?;
            pass.scanned += page.scanned;
            pass.swept += page.swept;
            let Some(next) = next else {
                return Ok(pass);
            };
            after = Some(next);
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// The page after `after`: what it did, and the last key read (`None`
    /// when the family ends within it).
    async fn sweep_page(
        &self,
        actor: &Actor,
        after: Option<&[u8]>,
    ) -> Result<(SweepPass, Option<Vec<u8>>), VaultError> {
        let view = self.vault.store_view(Layer::Api);
        let mut unswept = (SweepPass::default(), None);
        for _ in 0..PAGE_ATTEMPTS {
            let entries = view
                .scan_prefix(keyspace::IDEMPOTENCY.as_bytes(), after, PAGE)
                .await?;
            let next = (entries.len() == PAGE)
                .then(|| entries.last().map(|(key, _)| key.clone()))
                .flatten();
            let now = Timestamp::now().seconds();
            let mut batch = Batch::new();
            let mut swept = 0;
            for (key, value) in &entries {
                // A record that does not decode (written before answers
                // carried a time) counts as expired, as it does on replay.
                if remembered_at(value).is_none_or(|at| is_expired(at, now, self.idempotency_ttl)) {
                    batch
                        .expect_equals(key.clone(), value.clone())
                        .delete(key.clone());
                    swept += 1;
                }
            }
            let scanned = entries.len() as u64;
            if swept == 0 {
                return Ok((SweepPass { scanned, swept }, next));
            }
            let detail = format!(
                "{swept} remembered answers older than {} s deleted",
                self.idempotency_ttl.as_secs()
            );
            let written = self
                .vault
                .commit_from_above(
                    batch,
                    actor,
                    Operation::IdempotencySweep,
                    None,
                    Outcome::Success,
                    Some(detail),
                )
                .await?;
            if written {
                return Ok((SweepPass { scanned, swept }, next));
            }
            unswept = (SweepPass { scanned, swept: 0 }, next);
        }
        // Keys on this page kept being reused; the next pass takes them.
        Ok(unswept)
    }
}
