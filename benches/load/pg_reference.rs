//! `--backend postgres`: the database's own reference, measured in the same
//! run on the same cluster as the service's rows: `pgbench` inserting one
//! row per transaction (a 200-byte bytea, about a sealed card record) with
//! `synchronous_commit = on`, at the same client count as the HTTP/1.1 rows.
//! And the comparison of each PostgreSQL row with the same row of an
//! earlier sled run (`--compare FILE`, default target/load-report.json).

use crate::common::postgres;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// One of PostgreSQL's client programs, pointed at the harness's cluster.
fn client_tool(name: &str) -> Command {
    let cluster = postgres::cluster();
    let mut command = postgres::as_postgres(&postgres::bin_dir().join(name));
    command
        .args(["-h", &cluster.host, "-p", &cluster.port.to_string()])
        .args(["-U", &cluster.user]);
    command
}

/// pgbench's transactions per second (without connection time), and the
/// database's CPU microseconds per transaction over its run.
pub fn pgbench(clients: usize, seconds: f64) -> (f64, f64) {
    let cluster = postgres::cluster();
    cluster.execute("DROP DATABASE IF EXISTS pgbench_reference");
    cluster.execute("CREATE DATABASE pgbench_reference");
    let script = std::env::temp_dir().join(format!("tokenvault-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO reference (value) VALUES (decode(repeat('ab', 200), 'hex'));\n",
    )
    .expect("pgbench script");
    let psql = |sql: &str| {
        let out = client_tool("psql")
            .args(["-d", "pgbench_reference", "-q", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql("CREATE TABLE reference (id bigserial PRIMARY KEY, value bytea NOT NULL)");
    let cpu_before = crate::drive::postgres_cpu();
    let out = client_tool("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &format!("{}", seconds.ceil() as u64)])
        .arg("-f")
        .arg(&script)
        .arg("pgbench_reference")
        .output()
        .expect("pgbench");
    let cpu = cpu_before
        .zip(crate::drive::postgres_cpu())
        .map_or(f64::NAN, |(a, b)| b.saturating_sub(a).as_secs_f64());
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.trim_start_matches(name)
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let tps = field("tps = ").unwrap_or_else(|| panic!("no tps in pgbench's output:\n{text}"));
    let transactions = field("number of transactions actually processed: ").unwrap_or(f64::NAN);
    (tps, cpu * 1e6 / transactions)
}

/// The rate of the row with this name and protocol in a sled report.
pub fn sled_rate(report: &Value, name: &str, proto: &str, offered: Option<f64>) -> Option<f64> {
    if report["backend"].as_str().unwrap_or("sled") != "sled" {
        return None;
    }
    report["rows"].as_array()?.iter().find_map(|row| {
        let same = row["name"] == name
            && row["proto"] == proto
            && row["offered_req_per_s"].as_f64().is_some() == offered.is_some();
        same.then(|| row["req_per_s"].as_f64()).flatten()
    })
}

pub fn load_report(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The cluster is the one the harness started (or TOKENVAULT_TEST_PG_URL's).
pub fn describe() -> String {
    let cluster = postgres::cluster();
    let version = Command::new(postgres::bin_dir().join("postgres"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{version} on 127.0.0.1:{} (fsync on, synchronous_commit on)",
        cluster.port
    )
}
