//! Criterion micro-benchmarks of the vault's hot pieces, one core, no I/O:
//! PAN parse + Luhn + BIN lookup, AES-256-GCM seal and open with the record
//! binding as AAD, the keyed fingerprint, token-number generation, and the
//! domain-control check a debit makes.
//!
//! Run: `cargo bench --bench hot_paths` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeSet;
use std::hint::black_box;
use tokenvault::domain::ids::{ChannelId, Currency, MerchantId};
use tokenvault::domain::time::Timestamp;
use tokenvault::vault::card::{BinTable, CardRules};
use tokenvault::vault::microbench::{self, Fingerprinter, Sealer, Usage};
use tokenvault::vault::token::{ControlsSpec, DomainControls, TokenBinRange, UseRequest};

const PAN: &str = "6222020200112233445";

fn card(c: &mut Criterion) {
    let rules = CardRules::default();
    let bins = BinTable::embedded().expect("embedded BIN table");
    let pan = {
        let body = &PAN[..PAN.len() - 1];
        let check = tokenvault::vault::card::luhn::check_digit(body.as_bytes());
        format!("{body}{}", char::from(check))
    };
    c.bench_function("pan parse + luhn + bin lookup", |b| {
        b.iter(|| microbench::parse_pan(black_box(&pan), &rules, &bins).expect("valid PAN"))
    });
}

fn crypto(c: &mut Criterion) {
    let sealer = Sealer::random().expect("key");
    let record_id = "crd_0123456789abcdef0123456789abcdef";
    c.bench_function("seal 19-digit PAN (AES-256-GCM, AAD)", |b| {
        b.iter(|| {
            sealer
                .seal(black_box(record_id), black_box(PAN.as_bytes()))
                .expect("seal")
        })
    });
    let sealed = sealer.seal(record_id, PAN.as_bytes()).expect("seal");
    c.bench_function("open 19-digit PAN (AES-256-GCM, AAD)", |b| {
        b.iter(|| {
            sealer
                .open_len(black_box(record_id), black_box(&sealed))
                .expect("open")
        })
    });
    let fingerprinter = Fingerprinter::random().expect("key");
    c.bench_function("fingerprint (HMAC-SHA256, hex)", |b| {
        b.iter(|| fingerprinter.hex(black_box(PAN.as_bytes())))
    });
}

fn tokens(c: &mut Criterion) {
    let range = TokenBinRange::parse("810000-819999").expect("range");
    c.bench_function("token number (19 digits, OS random, Luhn)", |b| {
        b.iter(|| microbench::token_number(&range, black_box(19)).expect("token"))
    });
    let now = Timestamp::now();
    let controls = DomainControls::new(ControlsSpec {
        max_uses: u32::MAX,
        per_transaction_limit: 100_000,
        cumulative_limit: tokenvault::domain::amount::MAX_MINOR_UNITS,
        currency: Currency::parse("CNY").expect("currency"),
        valid_from: Timestamp(now.seconds() - 60),
        valid_until: Timestamp(now.seconds() + 86_400),
        channels: BTreeSet::from([
            ChannelId::parse("bank-a").expect("channel"),
            ChannelId::parse("bank-b").expect("channel"),
        ]),
        merchants: Some(BTreeSet::from([MerchantId::parse("M001").expect("merchant")])),
    })
    .expect("controls");
    let request = UseRequest {
        amount: 100,
        currency: Currency::parse("CNY").expect("currency"),
        channel: ChannelId::parse("bank-b").expect("channel"),
        merchant: MerchantId::parse("M001").expect("merchant"),
    };
    c.bench_function("domain-control check (all controls pass)", |b| {
        b.iter(|| {
            let mut usage = Usage::default();
            microbench::check_controls(&controls, &mut usage, black_box(&request), now).expect("passes");
            usage
        })
    });
}

criterion_group!(hot_paths, card, crypto, tokens);
criterion_main!(hot_paths);
