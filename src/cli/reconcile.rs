//! `tokenvault reconcile`: asks a running service to reconcile a channel's
//! statement of a date (over mutual TLS, as the reconciler), prints the
//! run as a table of classes and amounts, and writes the discrepancies as
//! JSON and CSV when asked; with `--ledger`, runs the vault's check of its
//! own books instead and prints any drift.

use super::remote::{answer, Remote};

use super::Report;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub(super) struct ReconcileArgs {
    /// The channel whose statement is reconciled.
    #[arg(long, required_unless_present = "ledger")]
    channel: Option<String>,
    /// The settlement date, YYYY-MM-DD (Beijing time).
    #[arg(long, required_unless_present = "ledger")]
    date: Option<String>,
    /// Check the vault's own books instead: every token's committed uses
    /// and amount against its payments, every payment's refunds against
    /// what it captured. Exits 1 on any drift.
    #[arg(long, conflicts_with_all = ["channel", "date", "json", "csv"])]
    ledger: bool,
    /// Also write the whole run (JSON) here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the discrepancies (CSV) here.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
}

pub(super) fn run(args: ReconcileArgs) -> Result<Report, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(reconcile(args))
}

async fn reconcile(args: ReconcileArgs) -> Result<Report, String> {
    let remote = args.remote.acting_as("reconciler");
    if args.ledger {
        return ledger(&remote).await;
    }
    let body = serde_json::to_vec(&serde_json::json!({ "channel": args.channel, "date": args.date }))
        .map_err(|e| e.to_string())?;
    let channel = args.channel.clone().unwrap_or_default();
    let date = args.date.clone().unwrap_or_default();
    let bar = progress_bar();
    let reply = tokio::select! {
        reply = remote.mutate("/v1/reconciliation/runs", Some(body)) => reply,
        never = follow_progress(&remote, &channel, &date, &bar) => match never {},
    };
    bar.finish_and_clear();
    let reply = reply?;
    if reply.status != 201 {
        return answer::<String>(Ok(reply));
    }
    let run: serde_json::Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
    if let Some(path) = &args.json {
        crate::atomic_file::write(path, &reply.body, 0o600)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.csv {
        let csv = discrepancies_csv(&run).map_err(|e| e.to_string())?;
        crate::atomic_file::write(path, &csv, 0o600).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let open = run["discrepancies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["state"] == "open")
        .count();
    Ok(Report {
        message: summary(&run),
        code: u8::from(open > 0),
    })
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {percent:>3}% {elapsed}")
    {
        bar.set_style(style.progress_chars("#>."));
    }
    bar
}

/// Shows how far the run is, until the run's answer ends it (the caller
/// drops this): a bar on a terminal; where stderr is not one (a log, CI),
/// a plain line at each new stage and every few seconds. What the service cannot say (a run on
/// another node, an older service) shows as waiting.
#[allow(clippy::print_stderr)]
async fn follow_progress(
    remote: &Remote,
    channel: &str,
    date: &str,
    bar: &indicatif::ProgressBar,
) -> std::convert::Infallible {
    let path = format!("/v1/reconciliation/progress?channel={channel}&date={date}");
    let (mut last_line, mut last_stage): (Option<Instant>, Option<String>) = (None, None);
    loop {
        let stage = match remote.get(&path).await {
            Ok(reply) if reply.status == 200 => serde_json::from_slice::<serde_json::Value>(&reply.body).ok(),
            _ => None,
        };
        let (done, of) = stage.as_ref().map_or((0, 0), |s| {
            (s["done"].as_u64().unwrap_or(0), s["of"].as_u64().unwrap_or(0))
        });
        let message = match stage.as_ref().and_then(|s| s["stage"].as_str()) {
            Some("fetching") => format!(
                "fetching {} of {}",
                indicatif::HumanBytes(done),
                indicatif::HumanBytes(of)
            ),
            Some("matching") => format!("matching: pass {} of {of}", done + 1),
            Some(other) => other.to_owned(),
            None => "waiting for the service".to_owned(),
        };
        bar.set_length(of);
        bar.set_position(done);
        bar.set_message(message.clone());
        bar.tick();
        let name = stage
            .as_ref()
            .and_then(|s| s["stage"].as_str().map(str::to_owned));
        let due = last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) || name != last_stage;
        if bar.is_hidden() && due {
            last_line = Some(Instant::now());
            eprintln!("reconcile {channel} {date}: {message}");
        }
        last_stage = name;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The run as a table: one row per class, then the statement's totals.
fn summary(run: &serde_json::Value) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::ASCII_MARKDOWN)
        .set_header(["class", "count"]);
    for class in [
        "matched",
        "channel_only",
        "vault_only",
        "amount_mismatch",
        "status_mismatch",
        "duplicate",
    ] {
        table.add_row([class.to_owned(), run["counts"][class].to_string()]);
    }
    if let Some(c) = table.column_mut(1) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    format!(
        "run {} of {} {}, version {}: {} lines, {} fen paid, {} fen refunded (statement sha256 {})\n{table}\n",
        run["run_id"].as_str().unwrap_or("?"),
        run["channel"].as_str().unwrap_or("?"),
        run["date"].as_str().unwrap_or("?"),
        run["version"],
        run["lines"],
        run["paid"],
        run["refunded"],
        run["digest"].as_str().unwrap_or("?"),
    )
}

fn discrepancies_csv(run: &serde_json::Value) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "class",
        "order_id",
        "refund_id",
        "channel_amount",
        "vault_amount",
        "state",
        "action",
    ])?;
    for d in run["discrepancies"].as_array().into_iter().flatten() {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writer.write_record([
            text(&d["class"]),
            text(&d["order_id"]),
            text(&d["refund_id"]),
            text(&d["channel_amount"]),
            text(&d["vault_amount"]),
            text(&d["state"]),
            text(&d["resolution"]["action"]),
        ])?;
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

/// The ledger check: counts, then one row per drift.
async fn ledger(remote: &Remote) -> Result<Report, String> {
    let reply = remote.get("/v1/reconciliation/ledger").await?;
    if reply.status != 200 {
        return answer::<String>(Ok(reply));
    }
    let report: serde_json::Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
    let drift = report["drift"].as_array().cloned().unwrap_or_default();
    let mut message = format!(
        "ledger: {} tokens, {} payments ({} whose card was erased), {} drift\n",
        report["tokens"],
        report["payments"],
        report["payments_without_token"],
        drift.len()
    );
    if !drift.is_empty() {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::ASCII_MARKDOWN)
            .set_header([
                "kind",
                "payment",
                "binding",
                "token",
                "token uses/amount",
                "payments' uses/amount",
            ]);
        let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        for d in &drift {
            table.add_row([
                text(&d["kind"]),
                text(&d["payment_id"]),
                text(&d["binding_id"]),
                text(&d["token_last4"]),
                format!("{}/{}", d["token_uses"], d["token_amount"]),
                format!("{}/{}", d["payment_uses"], d["payment_amount"]),
            ]);
        }
        message.push_str(&format!("{table}\n"));
    }
    Ok(Report {
        message,
        code: u8::from(!drift.is_empty()),
    })
}
