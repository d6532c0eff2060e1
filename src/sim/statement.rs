//! The simulated bank's daily statements: its ledger of successful
//! payments, refunds and revokes, cut into settlement dates at Beijing
//! midnight less the configured cut-off (日切: a trade in the last
//! `statement_cutoff_s` seconds of a day is on the next day's file), and
//! the statement faults reconciliation is tested against.

use super::bank::Bank;
use super::faults::StatementFaults;
use crate::channel::protocol::{Refusal, RefusalCode};
use crate::channel::statement::{self, LineKind, StatementLine, StatementPart, StatementRequest};
use std::sync::Arc;

use crate::domain::date::{day_number, BEIJING_OFFSET_S as BEIJING_S};

/// The settlement day a trade at `at_s` (Unix seconds) belongs to.
pub fn settlement_day(at_s: i64, cutoff_s: u64) -> i64 {
    let cutoff = i64::try_from(cutoff_s).unwrap_or(0);
    (at_s + BEIJING_S + cutoff).div_euclid(86_400)
}

/// A file as rendered for one merchant and date, with its digest.
#[derive(Clone)]
pub struct Rendered {
    merchant: String,
    date: String,
    file: Arc<String>,
    digest: String,
}

impl Bank {
    /// The part from `request.offset` of the statement of `request.date`
    /// for its merchant. The file is rendered, with the configured faults,
    /// when its first part is asked for; later parts are cut from it.
    pub fn statement(&self, request: &StatementRequest) -> Result<StatementPart, Refusal> {
        let faults = self.faults().statement;
        let cached = {
            let rendered = self
                .rendered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rendered
                .as_ref()
                .filter(|r| request.offset > 0 && r.merchant == request.merchant_id && r.date == request.date)
                .cloned()
        };
        let rendered = match cached {
            Some(rendered) => rendered,
            None => {
                let file = self.render_statement(request)?;
                let digest = if faults.bad_digest {
                    statement::digest("not this file")
                } else {
                    statement::digest(&file)
                };
                let rendered = Rendered {
                    merchant: request.merchant_id.clone(),
                    date: request.date.clone(),
                    file: Arc::new(file),
                    digest,
                };
                *self
                    .rendered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rendered.clone());
                rendered
            }
        };
        let file = &rendered.file;
        let from = usize::try_from(request.offset)
            .ok()
            .filter(|o| *o <= file.len() && file.is_char_boundary(*o))
            .ok_or_else(|| Refusal {
                code: RefusalCode::BadRequest,
                message: "offset is not in the file".to_owned(),
            })?;
        let most = match faults.part_bytes {
            0 => 4 << 20,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let rest = &file[from..];
        let to = if rest.len() <= most {
            rest.len()
        } else {
            // Up to the last line's end within `most`, or past one line
            // longer than that.
            match rest[..most].rfind('\n') {
                Some(end) => end + 1,
                None => rest.find('\n').map_or(rest.len(), |end| end + 1),
            }
        };
        Ok(StatementPart {
            date: request.date.clone(),
            digest: rendered.digest,
            size: file.len() as u64 + u64::from(faults.wrong_size),
            offset: request.offset,
            text: rest[..to].to_owned(),
        })
    }

    /// The whole file of `request.date`, faults applied.
    fn render_statement(&self, request: &StatementRequest) -> Result<String, Refusal> {
        let day = day_number(&request.date).ok_or_else(|| Refusal {
            code: RefusalCode::BadRequest,
            message: "date is YYYY-MM-DD".to_owned(),
        })?;
        let faults = self.faults().statement;
        let mut lines: Vec<StatementLine> = {
            let orders = self
                .orders
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let seeded = orders
                .seeded
                .iter()
                .filter(|(merchant, _)| *merchant == request.merchant_id)
                .map(|(_, l)| l);
            orders
                .ledger
                .iter()
                .filter(|l| orders.merchant_of(&l.order_id) == Some(request.merchant_id.as_str()))
                .chain(seeded)
                .filter(|l| settlement_day(l.trade_time, faults.cutoff_s) == day)
                .cloned()
                .collect()
        };
        apply_faults(&mut lines, &faults, day);
        let mut csv = statement::render(&lines);
        if faults.truncate {
            // Cut after the first half of the lines, summary gone, and
            // digested as it arrived: the summary check is what finds it.
            let keep = 1 + lines.len() / 2;
            csv = csv.lines().take(keep).map(|l| format!("{l}\n")).collect();
        }
        Ok(csv)
    }
}

fn apply_faults(lines: &mut Vec<StatementLine>, faults: &StatementFaults, day: i64) {
    lines.retain(|l| !faults.omit.contains(&l.order_id));
    for l in lines.iter_mut() {
        if l.kind == LineKind::Payment && faults.alter.contains(&l.order_id) {
            l.amount += 1;
        }
    }
    let doubled: Vec<StatementLine> = lines
        .iter()
        .filter(|l| l.kind == LineKind::Payment && faults.duplicate.contains(&l.order_id))
        .cloned()
        .collect();
    lines.extend(doubled);
    for (i, order) in faults.extra.iter().enumerate() {
        lines.push(StatementLine {
            trade_time: day * 86_400 - BEIJING_S + 43_200,
            channel_txn_no: format!("BTX{i:011}"),
            order_id: order.clone(),
            refund_id: String::new(),
            kind: LineKind::Payment,
            amount: faults.extra_amount,
            currency: "CNY".to_owned(),
            fee: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_off_moves_a_late_trade_to_the_next_days_file() {
        // 2026-12-05 23:50 Beijing is 15:50 UTC.
        let late = 20_792 * 86_400 + 15 * 3_600 + 50 * 60;
        assert_eq!(settlement_day(late, 0), 20_792);
        assert_eq!(
            settlement_day(late, 1_800),
            20_793,
            "after a 23:30 cut-off: the next day's file"
        );
    }
}
