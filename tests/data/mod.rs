//! The project's own public test numbers (`tests/data/*.csv`), read by the
//! unit tests in `src/` and by the integration tests alike, so a fresh clone
//! needs nothing beside it. Included by path from both places.
#![allow(dead_code)]

use serde::Deserialize;

const CARDS: &str = include_str!("cards.csv");
const IDENTITIES: &str = include_str!("identities.csv");
const PHONES: &str = include_str!("phones.csv");

/// One row of `cards.csv`.
#[derive(Debug, Deserialize)]
pub struct TestCard {
    pub pan: String,
    pub network: String,
    pub length: usize,
    pub luhn_valid: bool,
    /// The rule code a refusal names; empty for a valid card.
    pub expected_rule: String,
    pub note: String,
}

/// One row of `identities.csv`.
#[derive(Debug, Deserialize)]
pub struct TestIdentity {
    pub id_number: String,
    pub valid: bool,
    pub expected_rule: String,
    pub note: String,
}

/// One row of `phones.csv`.
#[derive(Debug, Deserialize)]
pub struct TestPhone {
    pub phone: String,
    pub valid: bool,
    pub normalised: String,
    pub note: String,
}

fn rows<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Vec<T> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .unwrap_or_else(|e| panic!("tests/data/{name}: {e}"))
}

pub fn cards() -> Vec<TestCard> {
    rows("cards.csv", CARDS)
}

pub fn identities() -> Vec<TestIdentity> {
    rows("identities.csv", IDENTITIES)
}

pub fn phones() -> Vec<TestPhone> {
    rows("phones.csv", PHONES)
}
