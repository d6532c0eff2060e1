//! The simulator's cardholder records (the bank's side of the four
//! elements), loaded from a CSV file or the embedded sample.

use crate::channel::protocol::CardKind;
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

const EMBEDDED: &str = include_str!("../../config/bank-sim-cardholders.csv");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardholderError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cardholder file line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

/// One account at the simulated bank.
pub struct Cardholder {
    pub name: Zeroizing<String>,
    pub id_no: Zeroizing<String>,
    pub phone: Zeroizing<String>,
    pub kind: CardKind,
    pub cvn: Option<Zeroizing<String>>,
    pub expiry: Option<Zeroizing<String>>,
    pub balance_fen: u64,
}

/// Card number → cardholder.
pub type Cardholders = HashMap<String, Cardholder>;

pub fn embedded() -> Result<Cardholders, CardholderError> {
    parse(EMBEDDED)
}

pub fn from_file(path: &Path) -> Result<Cardholders, CardholderError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| CardholderError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?);
    parse(&text)
}

/// `card_no,name,id_no,phone,kind,cvn,expiry,balance_fen` as CSV (RFC 4180
/// quoting), `#` comment lines. Credit cards need a 3- or 4-digit CVN and
/// an MMYY expiry.
pub fn parse(text: &str) -> Result<Cardholders, CardholderError> {
    let mut out = HashMap::new();
    for row in crate::csv_lines::secret_records(text) {
        let (line, record) = row.map_err(|line| CardholderError::Line {
            line,
            reason: "not valid CSV (an unclosed quote?)",
        })?;
        let bad = |reason| CardholderError::Line { line, reason };
        let cols: Vec<&str> = record.iter().map(|field| field.as_str()).collect();
        let [card_no, name, id_no, phone, kind, cvn, expiry, balance] = cols[..] else {
            return Err(bad("expected 8 comma-separated columns"));
        };
        if card_no.is_empty() || !card_no.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("card_no must be digits"));
        }
        let kind = match kind {
            "debit" => CardKind::Debit,
            "credit" => CardKind::Credit,
            _ => return Err(bad("kind must be debit or credit")),
        };
        let optional = |v: &str| (!v.is_empty()).then(|| Zeroizing::new(v.to_owned()));
        let (cvn, expiry) = (optional(cvn), optional(expiry));
        if kind == CardKind::Credit {
            let cvn_ok = cvn
                .as_ref()
                .is_some_and(|c| (3..=4).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()));
            let expiry_ok = expiry
                .as_ref()
                .is_some_and(|e| e.len() == 4 && e.bytes().all(|b| b.is_ascii_digit()));
            if !cvn_ok || !expiry_ok {
                return Err(bad("a credit card needs a 3- or 4-digit cvn and an MMYY expiry"));
            }
        }
        let balance_fen = balance
            .parse()
            .map_err(|_| bad("balance_fen must be a whole number"))?;
        let holder = Cardholder {
            name: Zeroizing::new(name.to_owned()),
            id_no: Zeroizing::new(id_no.to_ascii_uppercase()),
            phone: Zeroizing::new(phone.to_owned()),
            kind,
            cvn,
            expiry,
            balance_fen,
        };
        if out.insert(card_no.to_owned(), holder).is_some() {
            return Err(bad("card_no listed twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_sample_parses_and_bad_lines_are_named() {
        let all = super::embedded().unwrap();
        assert_eq!(all.len(), 3);
        let err = super::parse("1,a,b,c,credit,,,0").err().unwrap().to_string();
        assert!(err.contains("line 1") && err.contains("cvn"), "{err}");
        assert!(super::parse("1,a,b,c,debit,,,x").is_err());
        assert!(super::parse("1,a,b").is_err());
    }

    #[test]
    fn a_quoted_name_may_hold_a_comma() {
        let all =
            super::parse("# c\n6222020000000007,\"ZHANG, San\",11010519491231002x,13800138000,debit,,,100\n")
                .unwrap();
        let holder = &all["6222020000000007"];
        assert_eq!(holder.name.as_str(), "ZHANG, San");
        assert_eq!(holder.id_no.as_str(), "11010519491231002X");
        let err = super::parse("\n\n1,a,b").err().unwrap().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
