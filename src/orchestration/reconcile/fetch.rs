//! A day's statement fetched through the gateway part by part, each part
//! checked as it comes (`statement::Checker`: lines, totals, digest) and
//! kept sealed (`Vault::keep_statement`), so the file is never held whole.
//! A file that does not check is refused, and what was kept of it dropped.

use super::super::{OrchestrationError, Orchestrator};
use super::progress::{RunMark, Stage};
use crate::audit::Actor;
use crate::channel::statement::{self, Checker, StatementError, StatementPart, Totals, MAX_STATEMENT_BYTES};
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::store::Store;
use crate::vault::{StatementKeeper, Vault};

/// A statement that arrived whole and checked, kept under its digest.
pub(super) struct Fetched {
    pub digest: String,
    pub totals: Totals,
}

fn refused(why: &str) -> OrchestrationError {
    StatementError::Parts { why: why.to_owned() }.into()
}

impl Orchestrator {
    pub(super) async fn fetch_statement<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
        mark: &RunMark,
    ) -> Result<Fetched, OrchestrationError> {
        let date_text = date.to_string();
        let first = self.gateway.statement_part(channel, &date_text, 0).await?;
        let (digest, size) = (first.digest.clone(), first.size);
        if size > MAX_STATEMENT_BYTES {
            return Err(refused(&format!(
                "{size} bytes, more than the {MAX_STATEMENT_BYTES} a statement may have"
            )));
        }
        if !statement::is_digest(&digest) {
            return Err(StatementError::Digest.into());
        }
        let mut keeper = vault.keep_statement(actor, channel, date, &digest, size).await?;
        let mut checker = Checker::new(&digest);
        let taken = self
            .take_parts(channel, &date_text, first, &mut checker, &mut keeper, mark)
            .await;
        match taken.and_then(|()| checker.finish().map_err(OrchestrationError::from)) {
            Ok(totals) => {
                keeper.finish().await?;
                Ok(Fetched { digest, totals })
            }
            Err(e) => {
                if let Err(left) = keeper.abandon().await {
                    tracing::warn!(error = %left, "a refused statement's kept chunks were not dropped");
                }
                Err(e)
            }
        }
    }

    /// Takes `first` and the parts after it until the file is whole.
    async fn take_parts<S: Store>(
        &self,
        channel: &ChannelId,
        date: &str,
        first: StatementPart,
        checker: &mut Checker,
        keeper: &mut StatementKeeper<'_, S>,
        mark: &RunMark,
    ) -> Result<(), OrchestrationError> {
        let (digest, size) = (first.digest.clone(), first.size);
        let (mut part, mut offset) = (first, 0u64);
        loop {
            if part.digest != digest || part.size != size || part.offset != offset {
                return Err(refused("a part describes another file, or is out of place"));
            }
            let bytes = part.text.as_bytes();
            if bytes.is_empty() && offset < size {
                return Err(refused("an empty part before the end"));
            }
            offset = offset
                .checked_add(bytes.len() as u64)
                .filter(|end| *end <= size)
                .ok_or_else(|| refused("more bytes than the file's size"))?;
            checker.push(bytes);
            keeper.push(bytes).await?;
            mark.set(Stage::Fetching {
                done: offset,
                of: size,
            });
            if offset == size {
                return Ok(());
            }
            part = self.gateway.statement_part(channel, date, offset).await?;
        }
    }
}
