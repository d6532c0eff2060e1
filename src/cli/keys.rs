//! `tokenvault keys …`: make KEK share files (offline), and talk to a
//! running service over mutual TLS to unseal it, rotate, rewrap and retire
//! data keys, rotate the KEK, and show key status.

use super::remote::{answer, Remote};
use super::shares::{init_shares, share_to_submit, Recipients};
use super::Report;
use crate::channel::client::ChannelClient;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub(super) enum KeysCommand {
    /// Create a new KEK and split it M-of-N (Shamir over GF(256)), one
    /// share per custodian, written to --out (mode 0600). Offline: the KEK
    /// itself is never written anywhere. With --custodian (one per
    /// custodian, N of them), each share is sealed to that custodian's
    /// certificate key: only their private key opens it, so whoever runs
    /// the ceremony never holds a share in the clear, and the service takes
    /// it from that custodian only. --plaintext writes the shares in the
    /// clear instead (development only).
    InitShares {
        /// Shares needed to assemble the KEK (M), at least 2.
        #[arg(long)]
        threshold: u8,
        /// A custodian's client certificate (PEM, P-256 key); repeat for
        /// each custodian, at most 16.
        #[arg(long, value_name = "CERT")]
        custodian: Vec<PathBuf>,
        /// Write N plaintext shares instead (development only).
        #[arg(long, value_name = "N", conflicts_with = "custodian")]
        plaintext: Option<u8>,
        /// Folder for share-<i>-of-<N>[.sealed].json; existing files are
        /// never replaced.
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit your share to a sealed service (from your own certificate).
    /// A sealed share is opened here with your private key (--key) first.
    /// Each node of several on one database is sealed on its own: name the
    /// others with --also to unseal them in the same command.
    Unseal {
        /// Your share file.
        #[arg(long)]
        share: PathBuf,
        /// Another node's base URL to submit the same share to (repeat for
        /// each); the same certificate is used.
        #[arg(long, value_name = "URL")]
        also: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Whether the service is sealed, and how many shares it has.
    SealStatus {
        #[command(flatten)]
        remote: Remote,
    },
    /// KEK version and custody, each data-key version's state, records,
    /// encryptions against its budget, age against the cryptoperiod, and
    /// rewrap progress.
    Status {
        /// Print the JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a data-key version; all new writes use it at once.
    Rotate {
        #[command(flatten)]
        remote: Remote,
    },
    /// Add an audit key version; the audit chains move to it at a record
    /// boundary that `audit verify` follows (old versions kept to verify).
    RotateAudit {
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a pepper version for payment-password hashes; each password
    /// moves to it at its next successful check (`keys status` counts them).
    RotatePepper {
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a PAN fingerprint key version: new cards are indexed under it,
    /// `keys rewrap` moves stored cards to it, and duplicates are found
    /// under every version meanwhile (`keys status` counts cards per version).
    RotateFingerprint {
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a signing key version for audit anchors; anchors signed before
    /// keep verifying (pin every version: `audit anchor-key --all`).
    RotateAnchor {
        #[command(flatten)]
        remote: Remote,
    },
    /// Re-encrypt every record under the newest version, in the background
    /// (throttled, resumable). Shows a progress bar and an ETA until done.
    Rewrap {
        /// Start (or look at) the job and return at once.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Retire a data-key version no record uses; its key is erased.
    Retire {
        version: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// Submit your share of a NEW KEK (from `init-shares`); when enough
    /// custodians have, every key is rewrapped under the new KEK. With
    /// several nodes, submit to every node (--also): the first to assemble
    /// rotates, each other node adopts the new KEK when it has assembled it.
    RotateKek {
        #[arg(long)]
        share: PathBuf,
        /// Another node's base URL to submit the same share to (repeat).
        #[arg(long, value_name = "URL")]
        also: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub(super) fn run(command: KeysCommand) -> Result<Report, String> {
    if let KeysCommand::InitShares {
        threshold,
        custodian,
        plaintext,
        out,
    } = command
    {
        let recipients = match (custodian.is_empty(), plaintext) {
            (false, None) => Recipients::Custodians(custodian),
            (true, Some(n)) => Recipients::Plaintext(n),
            _ => return Err("name each custodian's certificate (--custodian CERT, repeated), or --plaintext N for development".into()),
        };
        return init_shares(threshold, recipients, &out);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(remote(command))
}

async fn remote(command: KeysCommand) -> Result<Report, String> {
    match command {
        KeysCommand::InitShares { .. } => Err("init-shares runs offline".into()),
        KeysCommand::Unseal { share, also, remote } => {
            let body = share_to_submit(&share, &remote.key_path())?;
            every_node(&remote, &also, Call::Unseal, &body).await
        }
        KeysCommand::SealStatus { remote } => answer(remote.client()?.get("/v1/admin/seal").await),
        KeysCommand::Status { json, remote } => {
            let reply = remote
                .client()?
                .get("/v1/admin/keys")
                .await
                .map_err(|e| e.to_string())?;
            if json || reply.status != 200 {
                return answer::<String>(Ok(reply));
            }
            let doc: serde_json::Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
            Ok(Report::ok(status_table(&doc)))
        }
        KeysCommand::Rotate { remote } => answer(remote.mutate("/v1/admin/keys/rotate", None).await),
        KeysCommand::RotateAudit { remote } => {
            answer(remote.mutate("/v1/admin/keys/audit/rotate", None).await)
        }
        KeysCommand::RotatePepper { remote } => {
            answer(remote.mutate("/v1/admin/keys/pepper/rotate", None).await)
        }
        KeysCommand::RotateFingerprint { remote } => {
            answer(remote.mutate("/v1/admin/keys/fingerprint/rotate", None).await)
        }
        KeysCommand::RotateAnchor { remote } => {
            answer(remote.mutate("/v1/admin/keys/anchor/rotate", None).await)
        }
        KeysCommand::Rewrap { no_wait, remote } => {
            let started = remote.mutate("/v1/admin/keys/rewrap", None).await?;
            if no_wait || started.status != 202 {
                return answer::<String>(Ok(started));
            }
            follow_rewrap(&remote.client()?).await
        }
        KeysCommand::Retire { version, remote } => answer(
            remote
                .mutate(&format!("/v1/admin/keys/{version}/retire"), None)
                .await,
        ),
        KeysCommand::RotateKek { share, also, remote } => {
            let body = share_to_submit(&share, &remote.key_path())?;
            every_node(&remote, &also, Call::RotateKek, &body).await
        }
    }
}

/// A share submission, which every node of several takes on its own.
#[derive(Clone, Copy)]
enum Call {
    Unseal,
    RotateKek,
}

impl Call {
    async fn send(self, remote: &Remote, body: Vec<u8>) -> Result<Report, String> {
        match self {
            Call::Unseal => answer(remote.client()?.post_json("/v1/admin/unseal", body).await),
            Call::RotateKek => answer(remote.mutate("/v1/admin/kek/rotation", Some(body)).await),
        }
    }
}

/// `call` at `remote`'s node and at each of `also`: one line per node,
/// failing if any node did.
async fn every_node(remote: &Remote, also: &[String], call: Call, body: &[u8]) -> Result<Report, String> {
    if also.is_empty() {
        return call.send(remote, body.to_vec()).await;
    }
    let key = remote.idempotency_key()?;
    let mut lines = Vec::new();
    let mut code = 0;
    for (n, url) in std::iter::once(&remote.url).chain(also).enumerate() {
        let (text, failed) = match call.send(&remote.at(url, n, &key), body.to_vec()).await {
            Ok(report) => (report.message, report.code),
            Err(e) => (e, 1),
        };
        code = code.max(failed);
        lines.push(format!("{url}: {}", text.trim_end()));
    }
    Ok(Report {
        message: lines.join("\n"),
        code,
    })
}

fn status_table(doc: &serde_json::Value) -> String {
    let mut out = format!(
        "KEK version {} ({} custody{})\ncryptoperiod {} s\naudit key version {}\npepper version {} (passwords per version: {})\nfingerprint version {}, floor {} (cards per version: {})\n",
        doc["kek_version"],
        doc["custody"].as_str().unwrap_or("?"),
        doc["share_set"]
            .as_object()
            .map(|s| format!(
                ", share set {} {}-of-{}",
                s["set_id"].as_str().unwrap_or("?"),
                s["threshold"],
                s["shares"]
            ))
            .unwrap_or_default(),
        doc["cryptoperiod_s"],
        doc["audit_key_version"],
        doc["pepper_version"],
        per_version(&doc["passwords_per_pepper"], "passwords"),
        doc["fingerprint_version"],
        doc["fingerprint_floor"],
        per_version(&doc["cards_per_fingerprint"], "cards"),
    );
    let period = doc["cryptoperiod_s"].as_f64().unwrap_or(1.0).max(1.0);
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::ASCII_MARKDOWN)
        .set_header([
            "version",
            "state",
            "records",
            "encryptions",
            "budget",
            "age (s)",
            "of cryptoperiod",
        ]);
    for key in doc["data_keys"].as_array().into_iter().flatten() {
        let age = key["age_s"].as_f64().unwrap_or(0.0);
        table.add_row([
            plain(&key["version"]),
            plain(&key["state"]),
            plain(&key["records"]),
            plain(&key["encryptions"]),
            plain(&key["encryption_budget"]),
            plain(&key["age_s"]),
            format!("{:.1}%", 100.0 * age / period),
        ]);
    }
    for column in 2..7 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    if let Some(job) = doc["rewrap"].as_object() {
        out.push_str(&format!(
            "rewrap {}: {} of {} records scanned, {} rewrapped\n",
            job["state"].as_str().unwrap_or("?"),
            job["scanned"],
            job["total"],
            job["rewrapped"]
        ));
    }
    out
}

/// A JSON value as a table cell: strings without their quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Polls the job until it finishes: a progress bar with rate and ETA on a
/// terminal; where stderr is not one (a log, CI), a plain line every few
/// seconds and at the end instead of a redrawn bar.
#[allow(clippy::print_stderr)]
async fn follow_rewrap(client: &ChannelClient) -> Result<Report, String> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{bar:30}] {percent:>3}% {pos}/{len} records, {per_sec}, ETA {eta} {msg}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("#>."),
    );
    let began = Instant::now();
    let mut last_line: Option<Instant> = None;
    let mut first_scanned: Option<u64> = None;
    loop {
        let reply = client.get("/v1/admin/keys").await.map_err(|e| e.to_string())?;
        if reply.status != 200 {
            bar.abandon();
            return answer::<String>(Ok(reply));
        }
        let doc: serde_json::Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        let job = &doc["rewrap"];
        let scanned = job["scanned"].as_u64().unwrap_or(0);
        let total = job["total"].as_u64().unwrap_or(0).max(scanned);
        let done = job["state"] == "finished";
        bar.set_length(total);
        bar.set_position(scanned);
        if bar.is_hidden() && (done || last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(5))) {
            last_line = Some(Instant::now());
            let base = *first_scanned.get_or_insert(scanned);
            let fraction = if total == 0 || done {
                1.0
            } else {
                scanned as f64 / total as f64
            };
            let rate = (scanned - base) as f64 / began.elapsed().as_secs_f64().max(0.001);
            let eta = match (done, rate > 0.0) {
                (true, _) => "done".to_owned(),
                (false, true) => format!("{:.0}s", (total - scanned) as f64 / rate),
                (false, false) => "?".to_owned(),
            };
            eprintln!(
                "rewrap {:.1}% {scanned}/{total} records, {rate:.0}/s, ETA {eta}",
                fraction * 100.0
            );
        }
        if done {
            bar.finish();
            return Ok(Report::ok(format!(
                "rewrap finished: {scanned} records scanned, {} rewrapped",
                job["rewrapped"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `[{version, <count>}]` as `v1 12, v2 3`.
fn per_version(versions: &serde_json::Value, count: &str) -> String {
    versions
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .map(|v| format!("v{} {}", v["version"], v[count]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
