//! Drives one scenario: every connection (or HTTP/2 stream) runs its own
//! loop, one request at a time, for warm-up plus the measured window. Only
//! requests that finish inside the window count.
//!
//! Closed loop (the default): each loop sends its next request when the
//! last is answered. Fixed rate (`Shape::rate`): the offered load is held at
//! R requests a second, spread evenly over the loops (loop k of N sends at
//! k/R + i·N/R); a request's latency is measured from when it was due, not
//! when it went out, so a service that falls behind is charged the queueing
//! it caused (no coordinated omission).

use crate::client::{Call, Conn, Proto, Target};
use crate::stats::Measured;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type MakeCall = Arc<dyn Fn(u64) -> Call + Send + Sync>;

pub struct Shape {
    pub proto: Proto,
    pub connections: usize,
    pub streams: usize,
    /// The service processes (one per node), whose CPU time over the
    /// measured window is reported per request, summed.
    pub service_pids: Vec<u32>,
    /// Offered load in requests a second; `None`: closed loop.
    pub rate: Option<f64>,
}

/// CPU time (user and system, every thread) process `pid` has used so far,
/// from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    cpu_ticks(pid, 2)
}

/// The summed CPU time of `pids` (`None` if any is gone, or there are none).
fn cpu_of(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| cpu_time(*pid)).sum()
}

/// `cpu_time`, plus the CPU of the children it has waited for.
fn cpu_time_with_children(pid: u32) -> Option<Duration> {
    cpu_ticks(pid, 4)
}

/// The sum of the first `fields` of utime, stime, cutime, cstime.
fn cpu_ticks(pid: u32, fields: usize) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces; the fields after
    // it start with the state (field 3), so utime, stime, cutime and
    // cstime (fields 14 to 17) are the 12th to the 15th.
    let after_name = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let ticks: Option<Vec<u64>> = after_name.skip(11).take(fields).map(|f| f.parse().ok()).collect();
    let ticks: u64 = ticks?.iter().sum();
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second()))
}

/// CPU time the local PostgreSQL server's processes (postmaster, backends,
/// WAL writer, checkpointer) have used so far, with that of backends that
/// have exited since (the postmaster's waited-for children); `None` when
/// none runs.
pub fn postgres_cpu() -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            if let Some(cpu) = cpu_time_with_children(pid) {
                total += cpu;
                found = true;
            }
        }
    }
    found.then_some(total)
}

/// `getconf CLK_TCK`, the unit of `/proc/<pid>/stat`'s times (100 on Linux
/// unless told otherwise).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// How long a scenario runs.
#[derive(Clone, Copy)]
pub enum Span {
    /// Warm-up, then this many measured seconds.
    Seconds(f64),
    /// Exactly this many requests, all measured (for operations the service
    /// rate-limits, such as reveals); the window ends with the last answer.
    Requests(u64),
}

const WARM_UP: Duration = Duration::from_secs(1);

struct Limits {
    accept: fn(u16) -> bool,
    /// When this loop's first request is due, and then every how long.
    pace: Option<(Instant, Duration)>,
    window_start: Instant,
    end: Instant,
    /// Requests left to send, when the span is a count.
    budget: Option<Arc<AtomicU64>>,
}

struct Worker {
    last_answer: Instant,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

/// `next` numbers the requests across every scenario run, so generated
/// PANs, ID numbers and order ids never repeat.
pub async fn drive(
    name: &str,
    target: &Target,
    shape: &Shape,
    span: Span,
    next: &Arc<AtomicU64>,
    make: MakeCall,
    accept: fn(u16) -> bool,
) -> Measured {
    let start = Instant::now();
    let (window_start, end, budget) = match span {
        Span::Seconds(seconds) => {
            let window_start = start + WARM_UP;
            (
                window_start,
                window_start + Duration::from_secs_f64(seconds),
                None,
            )
        }
        Span::Requests(n) => (
            start,
            start + Duration::from_secs(3600),
            Some(Arc::new(AtomicU64::new(n))),
        ),
    };
    // The service's CPU over the measured window: sampled at its start and
    // end, or (a fixed number of requests) around the whole run.
    let cpu_before_run = cpu_of(&shape.service_pids);
    let cpu_in_window = match span {
        Span::Seconds(_) if !shape.service_pids.is_empty() => Some(tokio::spawn({
            let pids = shape.service_pids.clone();
            async move {
                tokio::time::sleep_until(window_start.into()).await;
                let before = (cpu_of(&pids), postgres_cpu());
                tokio::time::sleep_until(end.into()).await;
                let service = before.0.zip(cpu_of(&pids)).map(|(a, b)| b.saturating_sub(a));
                let database = before.1.zip(postgres_cpu()).map(|(a, b)| b.saturating_sub(a));
                (service, database)
            }
        })),
        _ => None,
    };
    let mut tasks = Vec::new();
    let loops = shape.connections * shape.streams;
    let mut loop_index = 0u32;
    for _ in 0..shape.connections {
        let conn = match target.connect(shape.proto).await {
            Ok(conn) => conn,
            Err(e) => panic!("{name}: cannot connect: {e}"),
        };
        let mut handles: Vec<Conn> = (1..shape.streams).filter_map(|_| conn.share()).collect();
        handles.push(conn);
        for conn in handles {
            let (make, next, target, budget) = (
                Arc::clone(&make),
                Arc::clone(next),
                target.clone(),
                budget.clone(),
            );
            let proto = shape.proto;
            let pace = shape.rate.filter(|r| *r > 0.0).map(|rate| {
                let offset = Duration::from_secs_f64(f64::from(loop_index) / rate);
                (start + offset, Duration::from_secs_f64(loops as f64 / rate))
            });
            loop_index += 1;
            tasks.push(tokio::spawn(async move {
                let limits = Limits {
                    accept,
                    pace,
                    window_start,
                    end,
                    budget,
                };
                run_worker(conn, &target, proto, &make, &next, &limits).await
            }));
        }
    }
    let mut measured = Measured {
        name: name.to_owned(),
        proto: shape.proto.label(),
        connections: shape.connections * shape.streams,
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: end - window_start,
        latencies_us: Vec::new(),
        service_cpu: None,
        database_cpu: None,
        offered: shape.rate,
        baseline: crate::stats::Baseline::Ceiling,
    };
    let mut last_answer = window_start;
    for task in tasks {
        let w = task.await.expect("worker");
        last_answer = last_answer.max(w.last_answer);
        measured.ok += w.ok;
        measured.errors += w.errors;
        measured.first_error = measured.first_error.or(w.first_error);
        measured.latencies_us.extend(w.latencies_us);
    }
    measured.latencies_us.sort_unstable();
    if budget.is_some() {
        measured.elapsed = last_answer - window_start;
    }
    (measured.service_cpu, measured.database_cpu) = match cpu_in_window {
        Some(sampler) => sampler.await.unwrap_or((None, None)),
        None => (
            cpu_before_run
                .zip(cpu_of(&shape.service_pids))
                .map(|(a, b)| b.saturating_sub(a)),
            None,
        ),
    };
    measured
}

async fn run_worker(
    mut conn: Conn,
    target: &Target,
    proto: Proto,
    make: &MakeCall,
    next: &AtomicU64,
    limits: &Limits,
) -> Worker {
    let Limits {
        accept,
        pace,
        window_start,
        end,
        ref budget,
    } = *limits;
    let mut w = Worker {
        last_answer: window_start,
        ok: 0,
        errors: 0,
        first_error: None,
        latencies_us: Vec::with_capacity(1 << 16),
    };
    let mut due = pace.map(|(first, _)| first);
    loop {
        if let Some(left) = budget {
            let taken = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            if taken.is_err() {
                return w;
            }
        }
        if let (Some(at), Some((_, every))) = (due, pace) {
            if at >= end {
                return w;
            }
            tokio::time::sleep_until(at.into()).await;
            due = Some(at + every);
        }
        let call = make(next.fetch_add(1, Ordering::Relaxed));
        // At a fixed rate, latency runs from when the request was due.
        let sent = match (due, pace) {
            (Some(next_due), Some((_, every))) => next_due - every,
            _ => Instant::now(),
        };
        let outcome = conn.send(call).await;
        let done = Instant::now();
        if done > end {
            return w;
        }
        let counted = sent >= window_start;
        w.last_answer = done;
        match outcome {
            Ok((status, _)) if accept(status) => {
                if counted {
                    w.ok += 1;
                    let us = (done - sent).as_micros();
                    w.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok((status, body)) => {
                if counted {
                    w.errors += 1;
                }
                w.first_error.get_or_insert_with(|| {
                    format!(
                        "{status} {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    )
                });
            }
            Err(e) => {
                if counted {
                    w.errors += 1;
                }
                w.first_error.get_or_insert_with(|| format!("connection: {e}"));
                match target.connect(proto).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
}
