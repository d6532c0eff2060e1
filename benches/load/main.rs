//! Load harness: starts the real `tokenvault serve` and a `bank-sim` process
//! on loopback with a PKI made here, then drives the service over mutual TLS
//! with kept-alive connections (HTTP/1.1, and HTTP/2 with several streams per
//! connection), the way its callers load it. Prints one table row per
//! scenario (req/s, p50, p99, p99.9, errors, share of the `GET /health`
//! ceiling or of the durable-write reference (`reference.rs`), service CPU
//! per request) and writes the same figures as JSON.
//!
//! Run: `cargo bench --bench load` (release build). Options:
//!   --seconds S        measured time per row (default 5; 1 s of warm-up first)
//!   --connections N    HTTP/1.1 connections (default 64)
//!   --h2 CxS           HTTP/2 connections x streams each (default 8x8)
//!   --only a,b         run only the scenarios whose names contain these
//!                      (the ceiling always runs: ratios need it)
//!   --proto h1|h2      one protocol only (default both)
//!   --rate R|half      offered load held at R req/s per row instead of the
//!                      closed loop; `half`: each row closed-loop, then again
//!                      at half the rate it reached (latency below saturation)
//!   --json PATH        where the JSON goes (default target/load-report.json)
//!   --scale N          instead: load N cards through the bulk path, reporting
//!                      store-card and token-read figures at each decade
//!   --reconcile N      instead: seed N settled payments and N statement
//!                      lines (bulk, not the API) and time one reconciliation
//!                      run of them, with the service's peak RSS (with
//!                      `--backend postgres` too)
//!   --lines-per-pass N with `--reconcile`: the service's
//!                      `reconciliation.lines_per_pass` (default its own)
//!   --cache-mib M      the service's `store.cache_mib` (sled's page cache;
//!                      default the service's own, 1024)
//!   --backend B        `sled` (default) or `postgres`: the service on a
//!                      PostgreSQL cluster the harness starts (fsync on),
//!                      plus pgbench's single-row insert rate on it as the
//!                      database's own reference, and each row as a share
//!                      of that and of the same row in a sled report
//!   --nodes N          with `--backend postgres`: N service processes (1 to
//!                      3, named a, b, c) on the one database, connections
//!                      spread over them in turn; CPU is their sum
//!   --compare PATH     the sled report the PostgreSQL rows are compared
//!                      with (default target/load-report.json)

#[path = "../../tests/common/mod.rs"]
mod common;

mod client;
mod drive;
mod pg_reference;
mod reconcile;
mod reference;
mod scale;
mod scenarios;
mod stats;

use client::Proto;
use std::path::PathBuf;

pub struct Args {
    pub seconds: f64,
    pub connections: usize,
    pub h2_connections: usize,
    pub h2_streams: usize,
    pub only: Option<Vec<String>>,
    pub json: PathBuf,
    pub scale: Option<u64>,
    pub reconcile: Option<u64>,
    pub lines_per_pass: Option<u64>,
    pub protos: Vec<Proto>,
    pub rate: Option<Rate>,
    pub cache_mib: Option<u64>,
    /// `--audit-sink`: the service copies its trail to a sink file
    /// (`[audit] sink_file`), to measure what the copy costs.
    pub audit_sink: bool,
    pub postgres: bool,
    /// Service processes on one database (PostgreSQL only); connections
    /// are spread over them in turn.
    pub nodes: usize,
    pub compare: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    HalfOfMax,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let (h2_connections, h2_streams) = value("--h2")
        .and_then(|v| {
            let (c, s) = v.split_once('x')?;
            Some((c.parse().ok()?, s.parse().ok()?))
        })
        .unwrap_or((8, 8));
    Args {
        seconds: value("--seconds").and_then(|v| v.parse().ok()).unwrap_or(5.0),
        connections: value("--connections").and_then(|v| v.parse().ok()).unwrap_or(64),
        h2_connections,
        h2_streams,
        only: value("--only").map(|v| v.split(',').map(str::to_owned).collect()),
        json: value("--json").map(PathBuf::from).unwrap_or_else(|| {
            let name = match (value("--backend").as_deref(), value("--nodes")) {
                _ if value("--reconcile").is_some() => "reconcile-report.json".to_owned(),
                (Some("postgres"), Some(n)) if n != "1" => format!("load-report-postgres-{n}-nodes.json"),
                (Some("postgres"), _) => "load-report-postgres.json".to_owned(),
                _ => "load-report.json".to_owned(),
            };
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).join(name)
        }),
        nodes: match value("--nodes").map(|v| v.parse::<usize>()) {
            None => 1,
            Some(Ok(n @ 1..=3)) => n,
            Some(_) => panic!("--nodes: 1 to 3"),
        },
        scale: value("--scale").and_then(|v| v.parse().ok()),
        reconcile: value("--reconcile").and_then(|v| v.parse().ok()),
        lines_per_pass: value("--lines-per-pass").and_then(|v| v.parse().ok()),
        cache_mib: value("--cache-mib").and_then(|v| v.parse().ok()),
        audit_sink: argv.iter().any(|a| a == "--audit-sink"),
        postgres: match value("--backend").as_deref() {
            None | Some("sled") => false,
            Some("postgres") => true,
            Some(other) => panic!("--backend {other}: sled or postgres"),
        },
        compare: value("--compare").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/load-report.json"))
        }),
        rate: value("--rate").and_then(|v| match v.as_str() {
            "half" => Some(Rate::HalfOfMax),
            n => n.parse().ok().filter(|r: &f64| *r > 0.0).map(Rate::PerSecond),
        }),
        protos: match value("--proto").as_deref() {
            Some("h1") => vec![Proto::Http1],
            Some("h2") => vec![Proto::Http2],
            _ => vec![Proto::Http1, Proto::Http2],
        },
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let [_, flag, keys, data] = argv.as_slice() {
        if flag == reference::FLAG {
            reference::serve(keys.as_ref(), data.as_ref());
            return;
        }
    }
    let args = args();
    assert!(
        args.nodes == 1 || args.postgres,
        "--nodes needs --backend postgres"
    );
    // The service's per-request debug log would be what is measured.
    let _ = common::service::CHILD_LOG.set("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        if let Some(cards) = args.scale {
            scale::run(&args, cards).await;
        } else if let Some(lines) = args.reconcile {
            reconcile::run(&args, lines).await;
        } else {
            scenarios::run(&args).await;
        }
    });
}
