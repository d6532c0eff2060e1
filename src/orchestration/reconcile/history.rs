//! The store side of `across`: what a run reads of its channel's other
//! days (which file first showed each of its lines, the open 短款, the
//! date's earlier run), and the writes that carry out what `across_days`
//! decided, each resolution with its audit record, in the run's own write.

use super::super::{layout, Orchestrator};
use super::across::{AcrossDays, Seen, Short};
use super::matcher::{Class, Finding, LineKey};
use super::passes::Passes;
use super::resolve::{resolution_write, Action, DiscrepancyId, Resolution};
use super::run::ThisRun;
use super::RunId;
use crate::audit::Actor;
use crate::domain::date::SettlementDate;
use crate::domain::ids::ChannelId;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::store::{Batch, Store};
use crate::vault::{decode, encode, JoinedRecord, Layer, Vault, VaultError};
use std::collections::{BTreeMap, BTreeSet};

/// Lines per write of the `recon-seen` index.
const SEEN_CHUNK: usize = 20_000;
/// Lines per read of it: one round trip each on PostgreSQL.
const SEEN_READ: usize = 1_000;

/// What a run read of its channel's other days, with the raw values its
/// write is conditioned on.
pub(super) struct PastRuns {
    /// The channel's open 短款.
    pub shorts: BTreeMap<LineKey, (Short, SettlementDate)>,
    shorts_raw: BTreeMap<LineKey, Vec<u8>>,
    /// Every `recon-seen` entry of another date that stood, as read, for
    /// the lines of the passes so far: the write expects it unchanged.
    seen_standing: BTreeMap<LineKey, Vec<u8>>,
    /// The date's current run before this one, and its open discrepancies.
    previous: Option<(RunId, Vec<(u64, Finding)>)>,
    /// How many runs the date has had: this one is the next version.
    pub versions: u32,
}

impl PastRuns {
    /// The open 短款 of orders in pass `pass`.
    pub fn shorts_in(&self, passes: &Passes, pass: usize) -> BTreeMap<LineKey, (Short, SettlementDate)> {
        self.shorts
            .iter()
            .filter(|(key, _)| passes.of(&key.order_id) == pass)
            .map(|(key, short)| (key.clone(), short.clone()))
            .collect()
    }

    /// Keeps what a pass read of the lines other days showed first.
    pub fn stands(&mut self, seen: SeenLines) {
        self.seen_standing.extend(seen.standing);
    }
}

/// Which run's file first showed each line of one pass (`recon-seen`).
pub(super) struct SeenLines {
    /// Lines a current run of another date showed first, with that date.
    pub shown_on: BTreeMap<LineKey, SettlementDate>,
    /// Each other line's entry as read, where this run writes its own
    /// (none yet, one of this date, or one of a superseded run).
    to_write: BTreeMap<LineKey, Option<Vec<u8>>>,
    /// The entries behind `shown_on`, as read.
    standing: BTreeMap<LineKey, Vec<u8>>,
}

/// The run being written, as `settle` needs it.
pub(super) struct NewRun<'a> {
    pub channel: &'a ChannelId,
    pub id: &'a RunId,
    pub date: SettlementDate,
    /// This run's discrepancies, numbered as stored.
    pub discrepancies: &'a [Finding],
    pub by: &'a str,
}

impl Orchestrator {
    /// How many runs `channel` and `date` have had, and the current
    /// (latest) one, from one scan of the date's index.
    pub(super) async fn date_runs<S: Store>(
        &self,
        vault: &Vault<S>,
        channel: &ChannelId,
        date: &str,
    ) -> Result<(u32, Option<RunId>), VaultError> {
        let (mut count, mut last) = (0u32, None);
        vault
            .store_view(Layer::Orchestration)
            .for_each_under(&layout::recon_dates_prefix(channel, date), |_, raw| {
                count += 1;
                last = Some(raw.to_vec());
                Ok(())
            })
            .await?;
        let corrupt = || VaultError::Corrupt { what: "run index" };
        let current = last
            .map(|raw| {
                let text = std::str::from_utf8(&raw).map_err(|_| corrupt())?;
                RunId::parse(text).map_err(|_| corrupt())
            })
            .transpose()?;
        Ok((count, current))
    }

    /// The current (latest) run of `channel` and `date`, if any.
    pub(super) async fn current_run<S: Store>(
        &self,
        vault: &Vault<S>,
        channel: &ChannelId,
        date: &str,
    ) -> Result<Option<RunId>, VaultError> {
        Ok(self.date_runs(vault, channel, date).await?.1)
    }

    /// Which run's file first showed each of `keys`: a line a current run
    /// of another date showed stands there; the rest this run writes.
    pub(super) async fn seen_of<S: Store>(
        &self,
        vault: &Vault<S>,
        channel: &ChannelId,
        date: SettlementDate,
        keys: &BTreeSet<LineKey>,
    ) -> Result<SeenLines, VaultError> {
        let view = vault.store_view(Layer::Orchestration);
        let date_text = date.to_string();
        let mut seen_lines = SeenLines {
            shown_on: BTreeMap::new(),
            to_write: BTreeMap::new(),
            standing: BTreeMap::new(),
        };
        let mut current: BTreeMap<String, Option<RunId>> = BTreeMap::new();
        let keys: Vec<&LineKey> = keys.iter().collect();
        for some in keys.chunks(SEEN_READ) {
            let at: Vec<Vec<u8>> = some.iter().map(|key| layout::recon_seen(channel, key)).collect();
            for (key, raw) in some.iter().zip(view.get_many(&at).await?) {
                let Some(raw) = raw else {
                    seen_lines.to_write.insert((*key).clone(), None);
                    continue;
                };
                let seen: Seen = decode(&raw, "seen line")?;
                let stands = if seen.date == date_text {
                    false
                } else {
                    if !current.contains_key(&seen.date) {
                        let run = self.current_run(vault, channel, &seen.date).await?;
                        current.insert(seen.date.clone(), run);
                    }
                    current.get(&seen.date).and_then(Option::as_ref) == Some(&seen.run)
                };
                if stands {
                    let day = SettlementDate::parse(&seen.date)
                        .map_err(|_| VaultError::Corrupt { what: "seen line" })?;
                    seen_lines.shown_on.insert((*key).clone(), day);
                    seen_lines.standing.insert((*key).clone(), raw);
                } else {
                    seen_lines.to_write.insert((*key).clone(), Some(raw));
                }
            }
        }
        Ok(seen_lines)
    }

    /// What the channel's other days say about a run of `date`: the open
    /// 短款, and the date's runs so far.
    pub(super) async fn past_runs<S: Store>(
        &self,
        vault: &Vault<S>,
        channel: &ChannelId,
        date: SettlementDate,
    ) -> Result<PastRuns, VaultError> {
        let view = vault.store_view(Layer::Orchestration);
        let mut past = PastRuns {
            shorts: BTreeMap::new(),
            shorts_raw: BTreeMap::new(),
            seen_standing: BTreeMap::new(),
            previous: None,
            versions: 0,
        };
        let prefix = layout::recon_shorts_of(channel);
        let mut shorts = Vec::new();
        view.for_each_under(&prefix, |key, raw| {
            shorts.push((line_key_after(key, prefix.len(), "open short key")?, raw.to_vec()));
            Ok(())
        })
        .await?;
        for (key, raw) in shorts {
            let short: Short = decode(&raw, "open short")?;
            let day =
                SettlementDate::parse(&short.date).map_err(|_| VaultError::Corrupt { what: "open short" })?;
            past.shorts.insert(key.clone(), (short, day));
            past.shorts_raw.insert(key, raw);
        }
        let (versions, previous) = self.date_runs(vault, channel, &date.to_string()).await?;
        past.versions = versions;
        if let Some(previous) = previous {
            let open = self.open_of_run(vault, &previous).await?;
            past.previous = Some((previous, open));
        }
        Ok(past)
    }

    /// The open discrepancies of `run`, with their findings.
    pub(super) async fn open_of_run<S: Store>(
        &self,
        vault: &Vault<S>,
        run: &RunId,
    ) -> Result<Vec<(u64, Finding)>, VaultError> {
        let view = vault.store_view(Layer::Orchestration);
        let prefix = layout::recon_open_of(run);
        let mut numbers = Vec::new();
        view.for_each_under(&prefix, |key, _| {
            numbers.push(number_after(key, prefix.len(), "open discrepancy")?);
            Ok(())
        })
        .await?;
        let mut open = Vec::with_capacity(numbers.len());
        for n in numbers {
            let raw = view
                .get(&layout::recon_discrepancy(run, n))
                .await?
                .ok_or(VaultError::Corrupt {
                    what: "open discrepancy without its finding",
                })?;
            open.push((n, decode(&raw, "discrepancy")?));
        }
        Ok(open)
    }

    /// Writes which lines this pass's part of the file showed first
    /// (`recon-seen`), before the run's own write and `SEEN_CHUNK` lines at
    /// a time, each chunk with one audit record: one write of a million
    /// lines is what made a run slow (sled's transaction grows worse than
    /// linearly). An entry counts only while its run is the current run of
    /// its date, so the entries of a run whose own write then fails (a
    /// crash, another run first) stand for nothing and are written over.
    /// `false`: another run changed an entry meanwhile; read again.
    pub(super) async fn write_seen<S: Store>(
        vault: &Vault<S>,
        actor: &Actor,
        run: &ThisRun<'_>,
        lines: &SeenLines,
        (pass, passes): (usize, usize),
    ) -> Result<bool, VaultError> {
        let seen = encode(&Seen {
            run: run.id.clone(),
            date: run.date.to_string(),
        })?;
        let entries: Vec<_> = lines.to_write.iter().collect();
        let chunks = entries.len().div_ceil(SEEN_CHUNK);
        for (n, chunk) in entries.chunks(SEEN_CHUNK).enumerate() {
            let mut batch = Batch::new();
            for (key, before) in chunk {
                let at = layout::recon_seen(run.channel, key);
                batch.expect(at.clone(), before.as_deref()).put(at, seen.clone());
            }
            let record = JoinedRecord {
                operation: Operation::ReconciliationRun,
                object: Some(vault.audit_object(run.id)),
                detail: Some(format!(
                    "lines shown: pass {pass} of {passes}, part {} of {chunks}, {} lines",
                    n + 1,
                    chunk.len()
                )),
            };
            if !vault
                .commit_from_above_records(batch, actor, vec![record])
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Adds to the run's write: its lines shown first elsewhere (expected
    /// unchanged), its 短款 held open, the other days' 短款 it carries or
    /// escalates, and the date's earlier run superseded; each resolution
    /// audited.
    pub(super) fn settle_across<S: Store>(
        vault: &Vault<S>,
        batch: &mut Batch,
        records: &mut Vec<JoinedRecord>,
        run: &NewRun<'_>,
        past: &PastRuns,
        across: &AcrossDays,
    ) -> Result<(), VaultError> {
        for (key, raw) in &past.seen_standing {
            batch.expect_equals(layout::recon_seen(run.channel, key), raw.clone());
        }
        let date = run.date.to_string();
        let mut short_now = BTreeSet::new();
        for (n, finding) in run.discrepancies.iter().enumerate() {
            if finding.class != Class::VaultOnly {
                continue;
            }
            let at = layout::recon_short(run.channel, &finding.key);
            let short = Short {
                run: run.id.clone(),
                n: n as u64,
                date: date.clone(),
            };
            let before = past.shorts_raw.get(&finding.key).map(Vec::as_slice);
            batch.expect(at.clone(), before).put(at, encode(&short)?);
            short_now.insert(finding.key.clone());
        }
        let resolve = |batch: &mut Batch, id: DiscrepancyId, class: Class, action: Action, reason: String| {
            let resolution = Resolution {
                action,
                reason,
                by: run.by.to_owned(),
                at: Timestamp::now(),
            };
            resolution_write(vault, batch, &id, class, &resolution)
        };
        // A 短款 settled here leaves the carried list as read.
        let drop_short = |batch: &mut Batch, key: &LineKey| {
            if let Some(raw) = past.shorts_raw.get(key) {
                let at = layout::recon_short(run.channel, key);
                batch.expect_equals(at.clone(), raw.clone()).delete(at);
            }
        };
        for (key, short) in &across.carried {
            drop_short(batch, key);
            let reason = format!("automatic: on the file of {date} (run {})", run.id);
            let id = short.discrepancy();
            records.push(resolve(
                batch,
                id,
                Class::VaultOnly,
                Action::CarriedForward,
                reason,
            )?);
        }
        for (key, short) in &across.escalated {
            drop_short(batch, key);
            let reason = format!("automatic: no file up to {date} showed it; recover from the channel");
            let id = short.discrepancy();
            records.push(resolve(
                batch,
                id,
                Class::VaultOnly,
                Action::RecoveryRequested,
                reason,
            )?);
        }
        if let Some((previous, open)) = &past.previous {
            for (n, finding) in open {
                let id = DiscrepancyId {
                    run: previous.clone(),
                    n: *n,
                };
                // Its 短款 entry goes too, unless this run holds the same
                // payment short again (its own entry replaces it).
                let ours = past
                    .shorts
                    .get(&finding.key)
                    .is_some_and(|(s, _)| s.discrepancy() == id);
                if ours && !short_now.contains(&finding.key) {
                    drop_short(batch, &finding.key);
                }
                let reason = format!("automatic: the date was reconciled again (run {})", run.id);
                records.push(resolve(batch, id, finding.class, Action::Superseded, reason)?);
            }
        }
        Ok(())
    }
}

/// The number a key ends in after `prefix_len` bytes.
pub(super) fn number_after(key: &[u8], prefix_len: usize, what: &'static str) -> Result<u64, VaultError> {
    std::str::from_utf8(&key[prefix_len..])
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or(VaultError::Corrupt { what })
}

/// `<order>/<refund>` of a `recon-short` or `recon-refund` key after
/// `prefix_len` bytes (its family and channel).
pub(super) fn line_key_after(
    key: &[u8],
    prefix_len: usize,
    what: &'static str,
) -> Result<LineKey, VaultError> {
    let text = std::str::from_utf8(&key[prefix_len..]).map_err(|_| VaultError::Corrupt { what })?;
    let (order, refund) = text.split_once('/').ok_or(VaultError::Corrupt { what })?;
    Ok(LineKey {
        order_id: order.to_owned(),
        refund_id: refund.to_owned(),
    })
}
