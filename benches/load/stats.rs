//! Latency samples and the table and JSON they are reported as.

use serde_json::{json, Value};
use std::time::Duration;

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
}

impl Measured {
    /// Service CPU microseconds per successful request.
    pub fn cpu_us_per_request(&self) -> f64 {
        match self.service_cpu {
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

    pub fn json(&self, ceiling: f64) -> Value {
        json!({
            "name": self.name, "proto": self.proto, "connections": self.connections,
            "requests_ok": self.ok, "errors": self.errors, "first_error": self.first_error,
            "seconds": self.elapsed.as_secs_f64(), "req_per_s": self.rate(),
            "p50_ms": self.ms(0.50), "p99_ms": self.ms(0.99), "p999_ms": self.ms(0.999),
            "ratio_to_ceiling": self.rate() / ceiling,
            "service_cpu_us_per_request": self.cpu_us_per_request(),
        })
    }
}

pub fn header() {
    println!(
        "{:<30} {:>5} {:>5} {:>10} {:>8} {:>8} {:>9} {:>7} {:>9} {:>11}",
        "scenario",
        "proto",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "ceiling",
        "cpu us/req"
    );
}

pub fn row(m: &Measured, ceiling: f64) {
    println!(
        "{:<30} {:>5} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>7} {:>8.0}% {:>11.0}",
        m.name,
        m.proto,
        m.connections,
        m.rate(),
        m.ms(0.50),
        m.ms(0.99),
        m.ms(0.999),
        m.errors,
        100.0 * m.rate() / ceiling,
        m.cpu_us_per_request()
    );
    if let Some(e) = &m.first_error {
        println!("    first error: {e}");
    }
}
