//! One reconciliation run: the statement of a channel and date fetched,
//! checked and kept (`fetch`), matched against the vault's payments on
//! that channel pass by pass (`passes`: one pass's lines and payments held
//! at a time), and kept with its discrepancies in one write whose audit
//! records are the run's (with every class counted) and one per line that
//! did not match. A run of a date already reconciled is a new version of
//! it; the earlier ones stay, their open discrepancies superseded.

use super::super::payment::{
    OrderId, OrderSubject, PaymentRecord, PaymentStatus, RefundStatus, PAID_AFTER_RELEASE,
};
use super::super::{layout, OrchestrationError, Orchestrator};
use super::across::{across_days, AcrossDays, History};
use super::automatic::ChannelRefund;
use super::history::{line_key_after, number_after, NewRun, PastRuns};
use super::matcher::{match_lines, Class, Finding, LineKey, VaultItem, VaultState};
use super::passes::Passes;
use super::progress::{RunMark, Stage};
use super::resolve::{DiscrepancyId, DiscrepancyView};
use super::RunId;
use crate::audit::Actor;
use crate::channel::statement::{LineReader, StatementLine};
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{keyspace, Batch, Store};
use crate::vault::{decode, encode, JoinedRecord, Layer, Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How often a run reads and decides again when its write finds the
/// history changed under it.
const RUN_ATTEMPTS: usize = 8;

/// A run as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct RunRecord {
    pub(super) id: RunId,
    pub(super) channel: ChannelId,
    pub(super) date: String,
    pub(super) version: u32,
    pub(super) digest: String,
    pub(super) lines: u64,
    pub(super) counts: Vec<(Class, u64)>,
    pub(super) totals: SettledTotals,
    pub(super) created_at: Timestamp,
    pub(super) created_by: String,
}

/// What the statement says moved, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledTotals {
    pub paid: u64,
    pub refunded: u64,
}

/// A run as callers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunView {
    pub id: RunId,
    pub channel: ChannelId,
    pub date: String,
    pub version: u32,
    pub digest: String,
    pub lines: u64,
    /// Every class, with how many lines or vault successes ended in it.
    pub counts: Vec<(Class, u64)>,
    pub totals: SettledTotals,
    /// Everything that did not match, each with its resolution once made.
    pub discrepancies: Vec<DiscrepancyView>,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl RunView {
    /// Each class's name with its count, for metrics.
    pub fn class_counts(&self) -> Vec<(&'static str, u64)> {
        self.counts.iter().map(|(c, n)| (c.as_str(), *n)).collect()
    }
}

impl RunRecord {
    pub(super) fn view(self, discrepancies: Vec<DiscrepancyView>) -> RunView {
        RunView {
            id: self.id,
            channel: self.channel,
            date: self.date,
            version: self.version,
            digest: self.digest,
            lines: self.lines,
            counts: self.counts,
            totals: self.totals,
            discrepancies,
            created_at: self.created_at,
            created_by: self.created_by,
        }
    }
}

fn payment_state(payment: &PaymentRecord) -> VaultState {
    match payment.status {
        PaymentStatus::Succeeded if payment.failure.as_deref() == Some(PAID_AFTER_RELEASE) => {
            VaultState::PaidAfterRelease
        }
        PaymentStatus::Succeeded => VaultState::Succeeded,
        s if s.in_flight() => VaultState::InFlight,
        _ => VaultState::NotPaid,
    }
}

fn refund_state(status: RefundStatus) -> VaultState {
    match status {
        RefundStatus::Succeeded => VaultState::Succeeded,
        RefundStatus::Processing => VaultState::InFlight,
        RefundStatus::Failed => VaultState::NotPaid,
    }
}

/// The vault's side of a pass: every payment and refund on the channel,
/// and the ones it expects on the date's file (its successes of that
/// Beijing date).
pub(super) type VaultSide = (BTreeMap<LineKey, VaultItem>, BTreeSet<LineKey>);

/// The run being made, as its passes need it.
pub(super) struct ThisRun<'a> {
    pub channel: &'a ChannelId,
    pub id: &'a RunId,
    pub date: SettlementDate,
    /// The file's SHA-256, which it is kept under.
    pub digest: &'a str,
}

/// What the passes found, together: the counts of every class, what did
/// not match (in key order), what it settles of other days, and the
/// vault's side of what the channel alone shows (for the automatic
/// actions).
#[derive(Default)]
struct Day {
    counts: BTreeMap<Class, u64>,
    discrepancies: Vec<Finding>,
    across: AcrossDays,
    unpaid: BTreeMap<LineKey, VaultItem>,
}

impl Orchestrator {
    /// Reconciles `channel`'s statement of `date`, as `actor`. A file whose
    /// digest or summary does not hold is refused (audited) and nothing is
    /// matched or kept.
    pub async fn reconcile<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
    ) -> Result<RunView, OrchestrationError> {
        let result = self.reconcile_inner(vault, actor, channel, date).await;
        let object = vault.audit_object(channel);
        self.audit_failure(vault, actor, Operation::ReconciliationRun, object, result)
            .await
    }

    async fn reconcile_inner<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        channel: &ChannelId,
        date: SettlementDate,
    ) -> Result<RunView, OrchestrationError> {
        let mark = self.reconcile_progress.start(channel, date);
        let fetched = self.fetch_statement(vault, actor, channel, date, &mark).await?;
        let per_pass = self.reconciliation.lines_per_pass;
        let passes = Passes::for_lines(fetched.totals.lines, per_pass);
        let totals = SettledTotals {
            paid: fetched.totals.paid,
            refunded: fetched.totals.refunded,
        };
        // A concurrent run of the channel, or a resolution made meanwhile,
        // changes what this one read: read again and decide again.
        for _ in 0..RUN_ATTEMPTS {
            let id = RunId::generate()?;
            let mut past = self.past_runs(vault, channel, date).await?;
            let this = ThisRun {
                channel,
                id: &id,
                date,
                digest: &fetched.digest,
            };
            let Some(day) = self
                .match_in_passes(vault, actor, &this, &passes, &mut past, &mark)
                .await?
            else {
                continue;
            };
            let record = RunRecord {
                id: id.clone(),
                channel: channel.clone(),
                date: date.to_string(),
                version: past.versions + 1,
                digest: fetched.digest.clone(),
                lines: fetched.totals.lines,
                counts: Class::ALL
                    .iter()
                    .map(|c| (*c, day.counts.get(c).copied().unwrap_or(0)))
                    .collect(),
                totals,
                created_at: Timestamp::now(),
                created_by: actor.identity.clone(),
            };
            mark.set(Stage::Writing);
            let (mut batch, mut records) = Self::run_write(vault, &record, &day.discrepancies)?;
            let new_run = NewRun {
                channel,
                id: &record.id,
                date,
                discrepancies: &day.discrepancies,
                by: &actor.identity,
            };
            Self::settle_across(vault, &mut batch, &mut records, &new_run, &past, &day.across)?;
            if vault.commit_from_above_records(batch, actor, records).await? {
                let views = day
                    .discrepancies
                    .into_iter()
                    .enumerate()
                    .map(|(n, finding)| DiscrepancyView {
                        id: DiscrepancyId {
                            run: record.id.clone(),
                            n: n as u64,
                        },
                        finding,
                        resolution: None,
                    })
                    .collect();
                let mut run = record.view(views);
                self.resolve_automatically(vault, actor, &mut run, &day.unpaid)
                    .await;
                return Ok(run);
            }
        }
        Err(VaultError::Contention.into())
    }

    /// Matches the day pass by pass, holding one pass's lines and
    /// payments at a time, and writes which lines each pass's part of the
    /// file showed first. `None`: another run changed those entries
    /// meanwhile; read again.
    async fn match_in_passes<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        this: &ThisRun<'_>,
        passes: &Passes,
        past: &mut PastRuns,
        mark: &RunMark,
    ) -> Result<Option<Day>, OrchestrationError> {
        let mut day = Day::default();
        for pass in 0..passes.count() {
            mark.set(Stage::Matching {
                done: pass as u64,
                of: passes.count() as u64,
            });
            let lines = self.lines_of_pass(vault, this, passes, pass).await?;
            let on_file: BTreeSet<LineKey> = lines.iter().map(LineKey::of).collect();
            let (items, due) = self.vault_side(vault, this, passes, pass, &on_file).await?;
            let matched = match_lines(&lines, &items, &due);
            drop((lines, due));
            let seen = self.seen_of(vault, this.channel, this.date, &on_file).await?;
            drop(on_file);
            let history = History {
                shown_on: seen.shown_on.clone(),
                shorts: past.shorts_in(passes, pass),
            };
            let window = self.reconciliation.short_window_days;
            let across = across_days(matched, &history, this.date, window);
            for finding in across.findings {
                *day.counts.entry(finding.class).or_insert(0) += 1;
                if finding.class == Class::ChannelOnly {
                    if let Some(item) = items.get(&finding.key) {
                        day.unpaid.insert(finding.key.clone(), *item);
                    }
                }
                if finding.class != Class::Matched {
                    day.discrepancies.push(finding);
                }
            }
            day.across.carried.extend(across.carried);
            day.across.escalated.extend(across.escalated);
            let part = (pass + 1, passes.count());
            if !Self::write_seen(vault, actor, this, &seen, part).await? {
                return Ok(None);
            }
            past.stands(seen);
        }
        Ok(Some(day))
    }

    /// The lines of pass `pass`, read from the file as kept.
    async fn lines_of_pass<S: Store>(
        &self,
        vault: &Vault<S>,
        this: &ThisRun<'_>,
        passes: &Passes,
        pass: usize,
    ) -> Result<Vec<StatementLine>, OrchestrationError> {
        let mut lines = Vec::new();
        let mut reader = LineReader::new(|line: StatementLine| {
            if passes.of(&line.order_id) == pass {
                lines.push(line);
            }
        });
        // Checked as it arrived: a line that fails now was not the file's.
        let corrupt = |_| VaultError::Corrupt { what: "statement" };
        vault
            .read_statement(this.channel, this.date, this.digest, |chunk| {
                reader.push(chunk).map_err(corrupt)
            })
            .await?;
        reader.finish().map_err(corrupt)?;
        Ok(lines)
    }

    /// The run's write: its record, its version's index entry (absent
    /// before, so two runs never share a version) and its discrepancies,
    /// with the audit records.
    fn run_write<S: Store>(
        vault: &Vault<S>,
        record: &RunRecord,
        discrepancies: &[Finding],
    ) -> Result<(Batch, Vec<JoinedRecord>), VaultError> {
        let index = layout::recon_date(&record.channel, &record.date, record.version);
        let mut batch = Batch::new();
        batch
            .expect_absent(index.clone())
            .put(index, record.id.as_str().as_bytes().to_vec())
            .put(layout::recon_run(&record.id), encode(record)?);
        let counted: Vec<String> = record
            .counts
            .iter()
            .map(|(class, n)| format!("{}={n}", class.as_str()))
            .collect();
        let mut records = vec![JoinedRecord {
            operation: Operation::ReconciliationRun,
            object: Some(vault.audit_object(&record.id)),
            detail: Some(format!(
                "channel={} date={} version={} lines={} paid={} refunded={} {} digest={}",
                record.channel.as_str(),
                record.date,
                record.version,
                record.lines,
                record.totals.paid,
                record.totals.refunded,
                counted.join(" "),
                record.digest
            )),
        }];
        for (n, finding) in discrepancies.iter().enumerate() {
            batch
                .put(layout::recon_discrepancy(&record.id, n as u64), encode(finding)?)
                .put(layout::recon_open(&record.id, n as u64), Vec::new());
            records.push(JoinedRecord {
                operation: Operation::ReconciliationDiscrepancy,
                object: Some(vault.audit_object(&record.id)),
                detail: Some(Self::discrepancy_detail(vault, finding)),
            });
        }
        Ok((batch, records))
    }

    /// A discrepancy as its audit record says it: class, the order (as an
    /// audit object: digested if it looks like a card number), the refund
    /// and both amounts.
    fn discrepancy_detail<S: Store>(vault: &Vault<S>, finding: &Finding) -> String {
        let order = OrderId::parse(&finding.key.order_id)
            .map(|id| {
                vault
                    .audit_object(&OrderSubject::new(None, &id))
                    .as_str()
                    .to_owned()
            })
            .unwrap_or_else(|_| "order=unparsed".to_owned());
        let amount = |a: Option<u64>| a.map_or_else(|| "none".to_owned(), |a| a.to_string());
        format!(
            "class={} {order} refund={} channel_amount={} vault_amount={}",
            finding.class.as_str(),
            if finding.key.refund_id.is_empty() {
                "-"
            } else {
                finding.key.refund_id.as_str()
            },
            amount(finding.channel_amount),
            amount(finding.vault_amount)
        )
    }

    /// The payments and refunds on the run's channel whose order falls in
    /// pass `pass` and which matter to it: those the pass's lines name
    /// (`on_file`), and the successes of its date (which the file should
    /// name). The rest of the channel's history is read, not held.
    async fn vault_side<S: Store>(
        &self,
        vault: &Vault<S>,
        this: &ThisRun<'_>,
        passes: &Passes,
        pass: usize,
        on_file: &BTreeSet<LineKey>,
    ) -> Result<VaultSide, OrchestrationError> {
        let (channel, date) = (this.channel, this.date);
        let (mut items, mut due) = (BTreeMap::new(), BTreeSet::new());
        let mut note = |key: LineKey, amount: u64, state: VaultState, at: Timestamp| {
            let of_the_date = state == VaultState::Succeeded && SettlementDate::of_time(at.seconds()) == date;
            if of_the_date {
                due.insert(key.clone());
            }
            if of_the_date || on_file.contains(&key) {
                items.insert(key, VaultItem { amount, state });
            }
        };
        // No payment's key is a bound itself (a payment id is longer), so
        // starting after the bound starts at it.
        let (start, end) = passes.range(pass);
        let (after, before) = (start.map(layout::payments_at), end.map(layout::payments_at));
        vault
            .store_view(Layer::Orchestration)
            .for_each_between(
                keyspace::PAYMENT.as_bytes(),
                after.as_deref(),
                before.as_deref(),
                |_, raw| {
                    let payment: PaymentRecord = decode(raw, "payment")?;
                    if payment.channel != *channel {
                        return Ok(());
                    }
                    let order_id = payment.id.as_str().to_owned();
                    for refund in &payment.refunds {
                        let key = LineKey {
                            order_id: order_id.clone(),
                            refund_id: refund.id.as_str().to_owned(),
                        };
                        note(key, refund.amount, refund_state(refund.status), refund.updated_at);
                    }
                    let key = LineKey {
                        order_id,
                        refund_id: String::new(),
                    };
                    note(key, payment.amount, payment_state(&payment), payment.created_at);
                    Ok(())
                },
            )
            .await?;
        // Refunds runs made at the channel for orders closed here.
        let prefix = layout::recon_refunds_of(channel);
        vault
            .store_view(Layer::Orchestration)
            .for_each_under(&prefix, |key, raw| {
                let line = line_key_after(key, prefix.len(), "channel refund key")?;
                if passes.of(&line.order_id) == pass {
                    let refund: ChannelRefund = decode(raw, "channel refund")?;
                    note(line, refund.amount, VaultState::Succeeded, refund.at);
                }
                Ok(())
            })
            .await?;
        Ok((items, due))
    }

    /// Run `id`, with its discrepancies, as `actor` (audited as a read).
    pub async fn reconciliation_run<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &RunId,
    ) -> Result<RunView, OrchestrationError> {
        let found = self.load_run(vault, id).await;
        let (outcome, detail) = match &found {
            Ok(run) => (
                crate::audit::Outcome::Success,
                format!("discrepancies={}", run.discrepancies.len()),
            ),
            Err(e) => e.audit(),
        };
        vault
            .record_outcome(
                actor,
                Operation::ReconciliationRead,
                Some(vault.audit_object(id)),
                outcome,
                Some(detail),
            )
            .await?;
        found
    }

    /// The statement file run `id` reconciled, as kept (sealed) when the
    /// run fetched it; its reading is audited.
    pub async fn reconciliation_statement<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
        id: &RunId,
    ) -> Result<String, OrchestrationError> {
        let run = match self.load_run_record(vault, id).await {
            Ok(run) => run,
            Err(e) => {
                let object = vault.audit_object(id);
                return self
                    .audit_failure(vault, actor, Operation::ReconciliationRead, object, Err(e))
                    .await;
            }
        };
        let date = SettlementDate::parse(&run.date).map_err(|_| VaultError::Corrupt {
            what: "reconciliation run",
        })?;
        Ok(vault
            .open_statement(actor, &run.channel, date, &run.digest)
            .await?)
    }

    pub(super) async fn load_run_record<S: Store>(
        &self,
        vault: &Vault<S>,
        id: &RunId,
    ) -> Result<RunRecord, OrchestrationError> {
        let raw = vault
            .store_view(Layer::Orchestration)
            .get(&layout::recon_run(id))
            .await
            .map_err(VaultError::from)?
            .ok_or(OrchestrationError::RunNotFound)?;
        Ok(decode(&raw, "reconciliation run")?)
    }

    async fn load_run<S: Store>(&self, vault: &Vault<S>, id: &RunId) -> Result<RunView, OrchestrationError> {
        let view = vault.store_view(Layer::Orchestration);
        let record = self.load_run_record(vault, id).await?;
        let prefix = layout::recon_discrepancies_prefix(id);
        let mut found: Vec<(u64, Finding)> = Vec::new();
        view.for_each_under(&prefix, |key, raw| {
            let n = number_after(key, prefix.len(), "discrepancy key")?;
            found.push((n, decode(raw, "discrepancy")?));
            Ok(())
        })
        .await?;
        let mut discrepancies = Vec::with_capacity(found.len());
        for (n, finding) in found {
            discrepancies.push(DiscrepancyView {
                id: DiscrepancyId { run: id.clone(), n },
                finding,
                resolution: self.resolution_of(vault, id, n).await?,
            });
        }
        Ok(record.view(discrepancies))
    }
}
