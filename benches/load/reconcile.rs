//! Reconciliation at scale: N settled payments seeded straight into the
//! service's store and the same N lines into bank-sim's ledger (the bulk
//! seeder, `tokenvault::sim::seed`, not the API), then one run of today's
//! statement through `POST /v1/reconciliation/runs` as the reconciler.
//! Prints the run's wall time, what it found, and the service's peak
//! resident memory (VmHWM), and writes them as JSON.

use crate::common::bank_sim::BankSim;
use crate::common::service::{Options, Service, TestBackend};
use crate::Args;
use serde_json::{json, Value};
use std::time::Instant;
use tokenvault::domain::date::SettlementDate;
use tokenvault::domain::ids::{ChannelId, MerchantId};
use tokenvault::domain::time::Timestamp;
use tokenvault::store::{PgStore, SledStore};

pub async fn run(args: &Args, lines: u64) {
    let mut service = Service::prepare(Options {
        extra_limits: "request_timeout_ms = 300000\n".to_owned(),
        extra_config: [
            args.cache_mib.map(|mib| format!("[store]\ncache_mib = {mib}\n")),
            args.lines_per_pass
                .map(|n| format!("[reconciliation]\nlines_per_pass = {n}\n")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        backend: if args.postgres {
            TestBackend::Postgres
        } else {
            TestBackend::Sled
        },
        ..Options::default()
    });
    let bank = BankSim::start(&service.keys, service.dir.path(), "bank", &[], &[]);
    service.add_config(&format!(
        "[gateway]\nsms_carrier = \"{}\"\n{}[payment]\npoll_interval_ms = 60000\n",
        bank.endpoint(),
        bank.channel_config("bank-a")
    ));
    // An hour ago, or just after Beijing midnight if that is later: one
    // settlement date on both sides.
    let now = Timestamp::now().seconds();
    let today = SettlementDate::of_time(now);
    let at = (now - 3_600).max(today.day_number() * 86_400 - 8 * 3_600 + 60);
    let seeding = Instant::now();
    let channel = ChannelId::parse("bank-a").expect("channel");
    let merchant = MerchantId::parse("M001").expect("merchant");
    if args.postgres {
        let config = std::fs::read_to_string(service.dir.path().join("tokenvault.toml")).expect("config");
        let settings = crate::common::postgres::store_section(&config).postgres;
        let store = PgStore::open(&settings)
            .await
            .expect("open the service's database");
        tokenvault::sim::seed::payments(&store, &channel, &merchant, lines, Timestamp(at))
            .await
            .expect("seed payments");
    } else {
        let store = SledStore::open(&service.data_dir()).expect("open the service's store");
        tokenvault::sim::seed::payments(&store, &channel, &merchant, lines, Timestamp(at))
            .await
            .expect("seed payments");
    }
    bank.seed_ledger("tokenvault-dev", lines, at).await;
    let seeded_s = seeding.elapsed().as_secs_f64();
    service.spawn();
    let client = service.client("reconciler");
    let started = Instant::now();
    let r = client
        .post_json(
            "/v1/reconciliation/runs",
            Some("bench-reconcile"),
            &json!({ "channel": "bank-a", "date": today.to_string() }),
        )
        .await
        .expect("reconcile");
    let took_s = started.elapsed().as_secs_f64();
    assert_eq!(r.status, 201, "{}", r.text());
    let run: Value = r.json();
    let peak_mib = service.pid().map_or(0.0, peak_kib) / 1024.0;
    let bank_peak_mib = bank.pid().map_or(0.0, peak_kib) / 1024.0;
    println!(
        "reconciled {lines} lines against {lines} seeded payments in {took_s:.1} s \
         ({:.0} lines/s); seeding took {seeded_s:.1} s",
        lines as f64 / took_s
    );
    println!(
        "counts {}; service peak RSS {peak_mib:.0} MiB (bank-sim {bank_peak_mib:.0} MiB)",
        run["counts"]
    );
    let report = json!({
        "lines": lines,
        "backend": if args.postgres { "postgres" } else { "sled" },
        "lines_per_pass": args.lines_per_pass,
        "seconds": took_s,
        "lines_per_second": lines as f64 / took_s,
        "counts": run["counts"],
        "service_peak_rss_mib": peak_mib,
        "bank_sim_peak_rss_mib": bank_peak_mib,
        "seed_seconds": seeded_s,
    });
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report).expect("JSON")).expect("write JSON");
    println!("JSON: {}", args.json.display());
}

/// Peak resident memory of process `pid` (VmHWM), KiB.
fn peak_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
