//! Latency samples and the table and JSON they are reported as.

use serde_json::{json, Value};
use std::time::Duration;

/// What a row is a share of: the `GET /health` ceiling (reads, and the
/// rows that are themselves references), or the durable-write reference
/// (rows that write durably).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    Ceiling,
    Reference,
}

impl Baseline {
    fn label(self) -> &'static str {
        match self {
            Baseline::Ceiling => "ceiling",
            Baseline::Reference => "reference",
        }
    }
}

pub struct Measured {
    pub name: String,
    pub proto: &'static str,
    pub connections: usize,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The service process's CPU time (all threads) over the window.
    pub service_cpu: Option<Duration>,
    /// The local PostgreSQL server's CPU time over the window (all its
    /// processes; every process named `postgres` on the machine).
    pub database_cpu: Option<Duration>,
    /// The fixed rate offered (req/s); `None`: closed loop.
    pub offered: Option<f64>,
    pub baseline: Baseline,
}

impl Measured {
    /// Service CPU microseconds per successful request.
    pub fn cpu_us_per_request(&self) -> f64 {
        match self.service_cpu {
            Some(cpu) if self.ok > 0 => cpu.as_secs_f64() * 1e6 / self.ok as f64,
            _ => f64::NAN,
        }
    }

    /// Database CPU microseconds per successful request.
    pub fn database_cpu_us_per_request(&self) -> f64 {
        match self.database_cpu {
            Some(cpu) if self.ok > 0 => cpu.as_secs_f64() * 1e6 / self.ok as f64,
            _ => f64::NAN,
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Percentile `p` (0..=1) in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 * p) as usize).min(self.latencies_us.len() - 1);
        f64::from(self.latencies_us[i]) / 1000.0
    }

    /// `Some`: the offered rate, and the row's name says so.
    pub fn label(&self) -> String {
        match self.offered {
            Some(rate) => format!("{} @{rate:.0}/s", self.name),
            None => self.name.clone(),
        }
    }

    pub fn json(&self, bases: Bases) -> Value {
        json!({
            "name": self.name, "proto": self.proto, "connections": self.connections,
            "offered_req_per_s": self.offered,
            "requests_ok": self.ok, "errors": self.errors, "first_error": self.first_error,
            "seconds": self.elapsed.as_secs_f64(), "req_per_s": self.rate(),
            "p50_ms": self.ms(0.50), "p99_ms": self.ms(0.99), "p999_ms": self.ms(0.999),
            "ratio_to": self.baseline.label(),
            "ratio": self.rate() / bases.of(self.baseline),
            "ratio_to_ceiling": self.rate() / bases.ceiling,
            "service_cpu_us_per_request": self.cpu_us_per_request(),
            "database_cpu_us_per_request": self.database_cpu.map(|_| self.database_cpu_us_per_request()),
        })
    }
}

/// The reference rates of one protocol's run.
#[derive(Clone, Copy, Debug)]
pub struct Bases {
    pub ceiling: f64,
    pub reference: f64,
}

impl Bases {
    /// For rows measured without the references (the scale run).
    pub const NONE: Bases = Bases {
        ceiling: f64::NAN,
        reference: f64::NAN,
    };

    fn of(self, baseline: Baseline) -> f64 {
        match baseline {
            Baseline::Ceiling => self.ceiling,
            Baseline::Reference => self.reference,
        }
    }
}

pub fn header() {
    println!(
        "{:<36} {:>5} {:>5} {:>10} {:>8} {:>8} {:>9} {:>7} {:>15} {:>11}",
        "scenario",
        "proto",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "share of",
        "cpu us/req"
    );
}

pub fn row(m: &Measured, bases: Bases) {
    let share = format!(
        "{:.0}% {}",
        100.0 * m.rate() / bases.of(m.baseline),
        m.baseline.label()
    );
    println!(
        "{:<36} {:>5} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>7} {:>15} {:>11.0}",
        m.label(),
        m.proto,
        m.connections,
        m.rate(),
        m.ms(0.50),
        m.ms(0.99),
        m.ms(0.999),
        m.errors,
        share,
        m.cpu_us_per_request()
    );
    if let Some(e) = &m.first_error {
        println!("    first error: {e}");
    }
}

/// What the figures were measured on.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gib": mem_kib / (1024 * 1024),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}
