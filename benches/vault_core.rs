//! In-process benchmark of the vault core on a real sled store on this disk:
//! durable store-card, durable reserve+commit, token reads, at several
//! concurrency levels. Prints throughput and latency percentiles.
//!
//! Run: `cargo bench --bench vault_core` (optionally `-- --seconds 5`).
//! Figures depend on the disk's fsync latency; quote them with the machine.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenvault::audit::Actor;
use tokenvault::domain::ids::{ChannelId, Currency, MerchantId};
use tokenvault::domain::time::Timestamp;
use tokenvault::store::SledStore;
use tokenvault::vault::keys::kek::Kek;
use tokenvault::vault::token::{ControlsSpec, DomainControls, UseRequest};
use tokenvault::vault::{Vault, VaultConfig};

type V = Arc<Vault<SledStore>>;

fn pan(seed: u64) -> String {
    let body = format!("621799{:09}", seed % 1_000_000_000);
    let check = tokenvault::vault::card::luhn::check_digit(body.as_bytes());
    format!("{body}{}", char::from(check))
}

fn controls() -> DomainControls {
    let now = Timestamp::now().seconds();
    DomainControls::new(ControlsSpec {
        max_uses: u32::MAX,
        per_transaction_limit: 1_000,
        cumulative_limit: tokenvault::domain::amount::MAX_MINOR_UNITS,
        currency: Currency::parse("CNY").unwrap(),
        valid_from: Timestamp(now - 60),
        valid_until: Timestamp(now + 86_400),
        channels: [ChannelId::parse("bench").unwrap()].into(),
        merchants: None,
    })
    .unwrap()
}

fn use_request() -> UseRequest {
    UseRequest {
        amount: 1,
        currency: Currency::parse("CNY").unwrap(),
        channel: ChannelId::parse("bench").unwrap(),
        merchant: MerchantId::parse("M1").unwrap(),
    }
}

struct Outcome {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Runs `workers` concurrent loops of `op` for `seconds`.
async fn drive<F, Fut>(workers: usize, seconds: f64, op: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                op(w, i).await;
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Outcome {
        ops: latencies.len(),
        elapsed,
        latencies,
    }
}

fn report(name: &str, workers: usize, o: &Outcome) {
    let pct = |p: f64| o.latencies[((o.latencies.len() as f64 * p) as usize).min(o.latencies.len() - 1)];
    println!(
        "{name:<28} {workers:>4} {:>12.0} {:>10.3} {:>10.3} {:>10.3}",
        o.ops as f64 / o.elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(0.999).as_secs_f64() * 1e3,
    );
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let vault: V = Arc::new(
            Vault::open(
                store.clone(),
                Kek::generate().unwrap(),
                VaultConfig::embedded().unwrap(),
            )
            .await
            .unwrap(),
        );
        println!(
            "tokenvault vault_core bench: {seconds} s per row, data in {}",
            dir.path().display()
        );
        println!(
            "{:<28} {:>4} {:>12} {:>10} {:>10} {:>10}",
            "operation", "conc", "ops/s", "p50 ms", "p99 ms", "p99.9 ms"
        );
        for workers in [1, 16, 64] {
            let v = Arc::clone(&vault);
            let flushes_before = store.stats().flushes;
            let o = drive(workers, seconds, move |w, i| {
                let v = Arc::clone(&v);
                async move {
                    let seed = (workers as u64) << 40 | (w as u64) << 24 | i;
                    v.store_card(&Actor::local("bench"), &pan(seed)).await.unwrap();
                }
            })
            .await;
            report("store_card (durable)", workers, &o);
            let flushes = store.stats().flushes - flushes_before;
            println!(
                "{:<28} {:>4} {:>12.1}",
                "  writes per fsync",
                workers,
                o.ops as f64 / flushes.max(1) as f64
            );
        }
        let card = vault
            .store_card(&Actor::local("bench"), &pan(999_999_999))
            .await
            .unwrap();
        let mut tokens = Vec::new();
        for _ in 0..256 {
            tokens.push(
                vault
                    .issue_token(
                        &Actor::local("bench"),
                        &card.card_ref,
                        controls(),
                        Timestamp::now(),
                    )
                    .await
                    .unwrap()
                    .number,
            );
        }
        let tokens = Arc::new(tokens);
        for workers in [1, 64] {
            let (v, t) = (Arc::clone(&vault), Arc::clone(&tokens));
            let o = drive(workers, seconds, move |w, i| {
                let (v, t) = (Arc::clone(&v), Arc::clone(&t));
                async move {
                    let token = &t[(w * 7 + i as usize) % t.len()];
                    let r = v
                        .reserve(&Actor::local("bench"), token, &use_request(), Timestamp::now())
                        .await
                        .unwrap();
                    v.commit_reservation(&Actor::local("bench"), &r.id, Timestamp::now())
                        .await
                        .unwrap();
                }
            })
            .await;
            report("reserve+commit (durable)", workers, &o);
        }
        for workers in [1, 64] {
            let (v, t) = (Arc::clone(&vault), Arc::clone(&tokens));
            let o = drive(workers, seconds, move |w, i| {
                let (v, t) = (Arc::clone(&v), Arc::clone(&t));
                async move {
                    v.token(&Actor::local("bench"), &t[(w + i as usize) % t.len()])
                        .await
                        .unwrap();
                }
            })
            .await;
            report("token read", workers, &o);
        }
    });
}
