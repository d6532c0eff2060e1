//! A channel's daily statement (对账单): every successful payment, refund
//! and revoke of one settlement date, as CSV in a bank statement's layout,
//! with a summary line of counts and totals, served with the SHA-256 digest
//! of its bytes. `bank-sim` writes it; the vault's reconciliation parses
//! it, and refuses a file whose digest or summary does not hold (truncated
//! or altered) before matching anything.

use ring::digest;
use serde::{Deserialize, Serialize};

pub const STATEMENT_PATH: &str = "/quickpay/v1/statement";
/// The columns, in order (the header line).
pub const HEADER: &str =
    "trade_time,channel_txn_no,merchant_order_id,merchant_refund_id,type,status,amount_fen,currency,fee_fen";
const SUMMARY: &str = "summary";

/// The statement of one settlement date, asked for by a merchant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementRequest {
    pub merchant_id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// The file and the digest the channel publishes with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementFile {
    pub date: String,
    /// SHA-256 of `csv`'s bytes, lower-case hex.
    pub digest: String,
    pub csv: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Payment,
    Refund,
    /// A paid order revoked (撤销): refunded in full by its cancel.
    Revoke,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Payment => "payment",
            LineKind::Refund => "refund",
            LineKind::Revoke => "revoke",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "payment" => Some(LineKind::Payment),
            "refund" => Some(LineKind::Refund),
            "revoke" => Some(LineKind::Revoke),
            _ => None,
        }
    }
}

/// One line: a successful payment, refund or revoke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Unix seconds.
    pub trade_time: i64,
    pub channel_txn_no: String,
    /// The order number the merchant sent (the vault's payment id).
    pub order_id: String,
    /// The refund number the merchant sent; empty for a payment.
    pub refund_id: String,
    pub kind: LineKind,
    pub amount: u64,
    pub currency: String,
    pub fee: u64,
}

/// Why a statement file is refused before anything is matched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    #[error("the file's SHA-256 is not the digest published with it")]
    Digest,
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("no summary line: the file is truncated")]
    Truncated,
    #[error("the summary says {said}, the lines add up to {found}")]
    Summary { said: String, found: String },
}

/// The counts and totals a summary line states, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub lines: u64,
    pub paid: u64,
    pub refunded: u64,
}

/// A statement that passed its digest and summary checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub lines: Vec<StatementLine>,
    /// What the summary states, equal to what the lines add up to.
    pub totals: Totals,
}

impl Totals {
    fn of(lines: &[StatementLine]) -> Option<Totals> {
        lines.iter().try_fold(Totals::default(), |t, l| {
            let (paid, refunded) = match l.kind {
                LineKind::Payment => (t.paid.checked_add(l.amount)?, t.refunded),
                LineKind::Refund | LineKind::Revoke => (t.paid, t.refunded.checked_add(l.amount)?),
            };
            Some(Totals {
                lines: t.lines + 1,
                paid,
                refunded,
            })
        })
    }

    fn show(self) -> String {
        format!(
            "{} lines, {} paid, {} refunded",
            self.lines, self.paid, self.refunded
        )
    }
}

pub fn digest(csv: &str) -> String {
    crate::hex::encode(digest::digest(&digest::SHA256, csv.as_bytes()).as_ref())
}

/// The file of `lines` for `date`: header, lines, summary.
pub fn render(lines: &[StatementLine]) -> String {
    let mut out = String::with_capacity(64 + lines.len() * 96);
    out.push_str(HEADER);
    out.push('\n');
    for l in lines {
        out.push_str(&format!(
            "{},{},{},{},{},success,{},{},{}\n",
            l.trade_time,
            l.channel_txn_no,
            l.order_id,
            l.refund_id,
            l.kind.as_str(),
            l.amount,
            l.currency,
            l.fee
        ));
    }
    let totals = Totals::of(lines).unwrap_or_default();
    out.push_str(&format!(
        "{SUMMARY},{},{},{}\n",
        totals.lines, totals.paid, totals.refunded
    ));
    out
}

/// Checks `file`'s digest, parses every line, and checks the summary
/// against the lines. Identifiers are plain tokens (no quoting, no commas).
pub fn parse(file: &StatementFile) -> Result<Statement, StatementError> {
    let digest_ok: bool =
        subtle::ConstantTimeEq::ct_eq(digest(&file.csv).as_bytes(), file.digest.as_bytes()).into();
    if !digest_ok {
        return Err(StatementError::Digest);
    }
    let mut rows = file.csv.lines().enumerate().map(|(i, text)| (i + 1, text));
    match rows.next() {
        Some((_, header)) if header == HEADER => {}
        _ => {
            return Err(StatementError::Line {
                line: 1,
                why: "not the statement header".into(),
            })
        }
    }
    let mut lines = Vec::new();
    for (line, text) in rows {
        let fields: Vec<&str> = text.split(',').collect();
        if fields.first() == Some(&SUMMARY) {
            let totals = check_summary(&lines, &fields, line)?;
            return Ok(Statement { lines, totals });
        }
        lines.push(parse_line(&fields).map_err(|why| StatementError::Line { line, why })?);
    }
    Err(StatementError::Truncated)
}

fn parse_line(fields: &[&str]) -> Result<StatementLine, String> {
    let [time, txn, order, refund, kind, status, amount, currency, fee] = fields else {
        return Err(format!("{} fields, not 9", fields.len()));
    };
    let number = |what: &str, text: &str| -> Result<u64, String> {
        text.parse::<u64>()
            .map_err(|_| format!("{what} is not a whole number"))
    };
    let token = |what: &str, text: &str, empty_ok: bool| -> Result<String, String> {
        let ok = (empty_ok || !text.is_empty())
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        ok.then(|| (*text).to_owned())
            .ok_or_else(|| format!("{what} is not an identifier"))
    };
    if *status != "success" {
        return Err(format!("status {status}: a statement lists successes only"));
    }
    let kind =
        LineKind::parse(kind).ok_or_else(|| format!("type {kind} is not payment, refund or revoke"))?;
    let refund_id = token("merchant_refund_id", refund, kind == LineKind::Payment)?;
    if kind == LineKind::Payment && !refund_id.is_empty() {
        return Err("a payment has no refund id".into());
    }
    Ok(StatementLine {
        trade_time: time
            .parse::<i64>()
            .map_err(|_| "trade_time is not Unix seconds".to_owned())?,
        channel_txn_no: token("channel_txn_no", txn, false)?,
        order_id: token("merchant_order_id", order, false)?,
        refund_id,
        kind,
        amount: number("amount_fen", amount)?,
        currency: token("currency", currency, false)?,
        fee: number("fee_fen", fee)?,
    })
}

fn check_summary(lines: &[StatementLine], fields: &[&str], line: usize) -> Result<Totals, StatementError> {
    let bad = |why: &str| StatementError::Line {
        line,
        why: why.to_owned(),
    };
    let [_, count, paid, refunded] = fields else {
        return Err(bad("the summary has 4 fields"));
    };
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| bad("a summary total is not a whole number"))
    };
    let said = Totals {
        lines: number(count)?,
        paid: number(paid)?,
        refunded: number(refunded)?,
    };
    let found = Totals::of(lines).ok_or_else(|| bad("the totals overflow"))?;
    if said != found {
        return Err(StatementError::Summary {
            said: said.show(),
            found: found.show(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(order: &str, kind: LineKind, refund: &str, amount: u64) -> StatementLine {
        StatementLine {
            trade_time: 1_800_000_000,
            channel_txn_no: format!("BT-{order}-{refund}"),
            order_id: order.into(),
            refund_id: refund.into(),
            kind,
            amount,
            currency: "CNY".into(),
            fee: 0,
        }
    }

    fn file(csv: String) -> StatementFile {
        StatementFile {
            date: "2026-12-05".into(),
            digest: digest(&csv),
            csv,
        }
    }

    #[test]
    fn a_rendered_statement_parses_back_and_a_cut_or_altered_one_is_refused() {
        let lines = vec![
            line("pay_1", LineKind::Payment, "", 1_000),
            line("pay_1", LineKind::Refund, "r1", 400),
            line("pay_2", LineKind::Payment, "", 500),
            line("pay_2", LineKind::Revoke, "cancel", 500),
        ];
        let csv = render(&lines);
        let parsed = parse(&file(csv.clone())).unwrap();
        assert_eq!(parsed.lines, lines);
        assert_eq!(
            parsed.totals,
            Totals {
                lines: 4,
                paid: 1_500,
                refunded: 900
            }
        );

        let mut wrong = file(csv.clone());
        wrong.digest = digest("something else");
        assert_eq!(parse(&wrong), Err(StatementError::Digest));

        // Cut before the summary, digest recomputed: truncated.
        let cut: String = csv.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(parse(&file(cut)), Err(StatementError::Truncated));
        // A line dropped but the summary kept: the totals disagree.
        let dropped: String = csv
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert!(matches!(
            parse(&file(dropped)),
            Err(StatementError::Summary { .. })
        ));
        // An amount changed: the totals disagree too.
        let changed = csv.replace(",payment,success,500,", ",payment,success,501,");
        assert!(matches!(
            parse(&file(changed)),
            Err(StatementError::Summary { .. })
        ));
        let failed = csv.replace(",refund,success,", ",refund,failed,");
        assert!(matches!(
            parse(&file(failed)),
            Err(StatementError::Line { line: 3, .. })
        ));
    }
}
