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
/// The largest file a channel may publish: some 40 million lines.
pub const MAX_STATEMENT_BYTES: u64 = 4 << 30;

/// A part of the statement of one settlement date, asked for by a
/// merchant: the file's bytes from `offset` on, as many as the channel
/// sends in one answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementRequest {
    pub merchant_id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    #[serde(default)]
    pub offset: u64,
}

/// One part of the file, with the digest and size of the whole, which
/// every part repeats. A part ends at a line's end; the last ends the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementPart {
    pub date: String,
    /// SHA-256 of the whole file's bytes, lower-case hex.
    pub digest: String,
    /// The whole file's length in bytes.
    pub size: u64,
    /// Where `text` starts in the file.
    pub offset: u64,
    pub text: String,
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
    /// The parts do not make up the file their size and digest describe
    /// (a part out of place, a size that changed, more or fewer bytes, a
    /// file larger than `MAX_STATEMENT_BYTES`).
    #[error("the file's parts do not add up: {why}")]
    Parts { why: String },
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
    /// These totals with `line` counted; `None` if a total would wrap.
    fn with(self, line: &StatementLine) -> Option<Totals> {
        let (paid, refunded) = match line.kind {
            LineKind::Payment => (self.paid.checked_add(line.amount)?, self.refunded),
            LineKind::Refund | LineKind::Revoke => (self.paid, self.refunded.checked_add(line.amount)?),
        };
        Some(Totals {
            lines: self.lines.checked_add(1)?,
            paid,
            refunded,
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

/// Whether `text` is spelled as `digest` spells one: 64 lower-case hex
/// digits (what a published digest must be before it names anything).
pub fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The file of `lines` for `date`: header, lines, summary.
pub fn render(lines: &[StatementLine]) -> String {
    let mut out = String::with_capacity(64 + lines.len() * 96);
    out.push_str(HEADER);
    out.push('\n');
    let mut totals = Some(Totals::default());
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
        totals = totals.and_then(|t| t.with(l));
    }
    let totals = totals.unwrap_or_default();
    out.push_str(&format!(
        "{SUMMARY},{},{},{}\n",
        totals.lines, totals.paid, totals.refunded
    ));
    out
}

/// What one line of the file is.
enum Row {
    Header,
    Line(StatementLine),
    Summary(Totals),
}

/// Splits text arriving in pieces of any length (a chunk may end inside a
/// line) into whole lines, numbered from 1, each parsed as a `Row`. Past
/// the summary line nothing more is read.
#[derive(Default)]
struct Rows {
    partial: Vec<u8>,
    number: usize,
    done: bool,
}

impl Rows {
    fn push(&mut self, mut piece: &[u8], each: &mut impl FnMut(Row)) -> Result<(), StatementError> {
        while !self.done {
            let Some(end) = piece.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(piece);
                return Ok(());
            };
            let row = if self.partial.is_empty() {
                self.row(&piece[..end])?
            } else {
                self.partial.extend_from_slice(&piece[..end]);
                let whole = std::mem::take(&mut self.partial);
                self.row(&whole)?
            };
            piece = &piece[end + 1..];
            if matches!(row, Row::Summary(_)) {
                self.done = true;
            }
            each(row);
        }
        Ok(())
    }

    /// The last line, when the file does not end in a newline.
    fn finish(&mut self, each: &mut impl FnMut(Row)) -> Result<(), StatementError> {
        if self.done || self.partial.is_empty() {
            return Ok(());
        }
        let last = std::mem::take(&mut self.partial);
        let row = self.row(&last)?;
        self.done = matches!(row, Row::Summary(_));
        each(row);
        Ok(())
    }

    fn row(&mut self, bytes: &[u8]) -> Result<Row, StatementError> {
        self.number += 1;
        let line = self.number;
        let bad = |why: String| StatementError::Line { line, why };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        if line == 1 {
            return if text == HEADER {
                Ok(Row::Header)
            } else {
                Err(bad("not the statement header".into()))
            };
        }
        let fields: Vec<&str> = text.split(',').collect();
        if fields.first() == Some(&SUMMARY) {
            return parse_summary(&fields).map(Row::Summary).map_err(bad);
        }
        parse_line(&fields).map(Row::Line).map_err(bad)
    }
}

/// A statement checked as it arrives, holding no line: every line parsed,
/// the totals added up, and at the end the digest, then the first bad
/// line, then the summary checked, in that order.
pub struct Checker {
    rows: Rows,
    sha256: digest::Context,
    published: String,
    found: Option<Totals>,
    said: Option<Totals>,
    first_error: Option<StatementError>,
}

impl Checker {
    pub fn new(published_digest: &str) -> Self {
        Checker {
            rows: Rows::default(),
            sha256: digest::Context::new(&digest::SHA256),
            published: published_digest.to_owned(),
            found: Some(Totals::default()),
            said: None,
            first_error: None,
        }
    }

    pub fn push(&mut self, piece: &[u8]) {
        self.sha256.update(piece);
        if self.first_error.is_some() {
            return;
        }
        let (found, said) = (&mut self.found, &mut self.said);
        if let Err(e) = self.rows.push(piece, &mut |row| tally(found, said, row)) {
            self.first_error = Some(e);
        }
    }

    /// The file's totals, once it is whole and they hold.
    pub fn finish(mut self) -> Result<Totals, StatementError> {
        let computed = crate::hex::encode(self.sha256.finish().as_ref());
        let digest_ok: bool =
            subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), self.published.as_bytes()).into();
        if !digest_ok {
            return Err(StatementError::Digest);
        }
        let (found, said) = (&mut self.found, &mut self.said);
        if self.first_error.is_none() {
            if let Err(e) = self.rows.finish(&mut |row| tally(found, said, row)) {
                self.first_error = Some(e);
            }
        }
        if let Some(e) = self.first_error {
            return Err(e);
        }
        let said = self.said.ok_or(StatementError::Truncated)?;
        let found = self.found.ok_or_else(|| StatementError::Line {
            line: self.rows.number,
            why: "the totals overflow".into(),
        })?;
        if said != found {
            return Err(StatementError::Summary {
                said: said.show(),
                found: found.show(),
            });
        }
        Ok(found)
    }
}

/// Counts a row into what the lines add up to, or what the summary says.
fn tally(found: &mut Option<Totals>, said: &mut Option<Totals>, row: Row) {
    match row {
        Row::Header => {}
        Row::Line(line) => *found = found.and_then(|t| t.with(&line)),
        Row::Summary(totals) => *said = Some(totals),
    }
}

/// The lines of a file checked before (by `Checker`), read again from its
/// pieces: only those `keep` takes are held.
pub struct LineReader<F> {
    rows: Rows,
    keep: F,
}

impl<F: FnMut(StatementLine)> LineReader<F> {
    pub fn new(keep: F) -> Self {
        LineReader {
            rows: Rows::default(),
            keep,
        }
    }

    pub fn push(&mut self, piece: &[u8]) -> Result<(), StatementError> {
        let keep = &mut self.keep;
        self.rows.push(piece, &mut |row| {
            if let Row::Line(line) = row {
                keep(line);
            }
        })
    }

    pub fn finish(mut self) -> Result<(), StatementError> {
        let keep = &mut self.keep;
        self.rows.finish(&mut |row| {
            if let Row::Line(line) = row {
                keep(line);
            }
        })
    }
}

/// Checks a whole file held in memory, and parses it: `Checker` and
/// `LineReader` in one, for a file small enough to hold.
pub fn parse(csv: &str, published_digest: &str) -> Result<Statement, StatementError> {
    let mut checker = Checker::new(published_digest);
    checker.push(csv.as_bytes());
    let totals = checker.finish()?;
    let mut lines = Vec::new();
    let mut reader = LineReader::new(|line| lines.push(line));
    reader.push(csv.as_bytes())?;
    reader.finish()?;
    Ok(Statement { lines, totals })
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

fn parse_summary(fields: &[&str]) -> Result<Totals, String> {
    let [_, count, paid, refunded] = fields else {
        return Err("the summary has 4 fields".into());
    };
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| "a summary total is not a whole number".to_owned())
    };
    Ok(Totals {
        lines: number(count)?,
        paid: number(paid)?,
        refunded: number(refunded)?,
    })
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

    fn parsed(csv: &str) -> Result<Statement, StatementError> {
        parse(csv, &digest(csv))
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
        let whole = parsed(&csv).unwrap();
        assert_eq!(whole.lines, lines);
        assert_eq!(
            whole.totals,
            Totals {
                lines: 4,
                paid: 1_500,
                refunded: 900
            }
        );

        assert_eq!(
            parse(&csv, &digest("something else")),
            Err(StatementError::Digest)
        );

        // Cut before the summary, digest recomputed: truncated.
        let cut: String = csv.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(parsed(&cut), Err(StatementError::Truncated));
        // A line dropped but the summary kept: the totals disagree.
        let dropped: String = csv
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert!(matches!(parsed(&dropped), Err(StatementError::Summary { .. })));
        // An amount changed: the totals disagree too.
        let changed = csv.replace(",payment,success,500,", ",payment,success,501,");
        assert!(matches!(parsed(&changed), Err(StatementError::Summary { .. })));
        let failed = csv.replace(",refund,success,", ",refund,failed,");
        assert!(matches!(
            parsed(&failed),
            Err(StatementError::Line { line: 3, .. })
        ));
    }

    proptest::proptest! {
        /// Cut into pieces anywhere (inside a line, inside a field), a file
        /// checks and reads the same as whole.
        #[test]
        fn pieces_of_any_size_read_as_the_whole(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let lines: Vec<StatementLine> = (0..9)
                .map(|i| line(&format!("pay_{i}"), LineKind::Payment, "", 100 + i))
                .collect();
            let csv = render(&lines);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % csv.len()).collect();
            cuts.push(csv.len());
            cuts.sort_unstable();
            let mut checker = Checker::new(&digest(&csv));
            let mut read = Vec::new();
            let mut reader = LineReader::new(|l| read.push(l));
            let mut from = 0;
            for to in cuts {
                checker.push(&csv.as_bytes()[from..to]);
                reader.push(&csv.as_bytes()[from..to]).unwrap();
                from = to;
            }
            reader.finish().unwrap();
            proptest::prop_assert_eq!(checker.finish().unwrap().lines, 9);
            proptest::prop_assert_eq!(read, lines);
        }
    }
}
