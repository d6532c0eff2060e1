//! Reconciliation (对账) end to end over mutual TLS, with `bank-sim` as its
//! own process publishing the day's statement: a day of payments, refunds
//! and a revoke reconciles clean; then a statement with a line missing, an
//! amount changed, a line twice and a payment only the bank has is classed
//! line by line, each discrepancy audited and queued; a truncated file and
//! a wrong digest are refused and take no version; a date run again
//! supersedes what its earlier run left open; a run reads back as stored.
//! Across days: a 短款 the next day's file shows is carried, one no file
//! shows is escalated, and a line on two days' files is a duplicate. The
//! runs' own actions: money the bank took for an order closed here is
//! refunded through the channel, once; the daily run reconciles the day
//! before by itself. The ledger check finds no drift.

mod common;

use common::world::*;
use serde_json::{json, Value};

impl World {
    async fn reconcile(&self, date: &str) -> common::service::Response {
        self.post(
            "reconciler",
            "/v1/reconciliation/runs",
            json!({ "channel": "bank-a", "date": date }),
        )
        .await
    }

    async fn reconcile_on(&self, date: &str) -> Value {
        let r = self.reconcile(date).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// The queue as `role` reads it: `(class, order_id)` of each entry.
    async fn queue(&self, role: &str, state: &str) -> Vec<(String, String)> {
        let r = self
            .service
            .client(role)
            .get(&format!(
                "/v1/reconciliation/discrepancies?state={state}&channel=bank-a"
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let mut out: Vec<(String, String)> = r.json()["discrepancies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["channel"], "bank-a");
                (
                    d["class"].as_str().unwrap().to_owned(),
                    d["order_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The resolution of the discrepancy of `class` in `run`, as read back.
    async fn resolution_in(&self, run: &Value, class: &str) -> Value {
        let path = format!("/v1/reconciliation/runs/{}", run["run_id"].as_str().unwrap());
        let read = self.service.client("auditor").get(&path).await.unwrap().json();
        read["discrepancies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["class"] == class)
            .unwrap_or_else(|| panic!("no {class} in {read}"))["resolution"]
            .clone()
    }

    async fn ledger_drift(&self) -> Value {
        let r = self
            .service
            .client("auditor")
            .get("/v1/reconciliation/ledger")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// A debit whose close races the payer: the bank answers closed, then
    /// takes the money (bank-sim's `close_races_payment`, set by the caller).
    async fn closed_then_paid(&self, token: &str, order: &str, amount: u64) -> String {
        let r = self
            .post("orchestrator", "/v1/payments", debit_body(token, order, amount))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let payment = r.json()["payment_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/payments/{payment}/cancel");
        let r = self.post("orchestrator", &path, json!(null)).await;
        assert_eq!(r.json()["status"], "closed", "{}", r.text());
        assert_eq!(self.bank.decide(&payment, "paid").await["status"], "succeeded");
        payment
    }

    /// `tokenvault reconcile` of `date` against this world's service, as
    /// the reconciler.
    fn reconcile_cli(&self, date: &str) -> std::process::Command {
        let keys = &self.service.keys;
        let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_tokenvault"));
        cli.args(["reconcile", "--channel", "bank-a", "--date", date, "--url"])
            .arg(format!("https://{}", self.service.addr))
            .arg("--ca")
            .arg(keys.ca_cert())
            .arg("--cert")
            .arg(keys.client_cert("reconciler"))
            .arg("--key")
            .arg(keys.client_key("reconciler"));
        cli
    }

    async fn paid(&self, token: &str, order: &str, amount: u64) -> String {
        let r = self
            .post("orchestrator", "/v1/payments", debit_body(token, order, amount))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["payment_id"].as_str().unwrap().to_owned()
    }
}

fn count(run: &Value, class: &str) -> u64 {
    run["counts"][class].as_u64().unwrap()
}

/// `(class, order_id, refund_id)` of each discrepancy, sorted.
fn found(run: &Value) -> Vec<(String, String, String)> {
    found_with(run, |d| d["refund_id"].as_str().unwrap_or("").to_owned())
}

/// `(class, order_id, third(discrepancy))` of each discrepancy, sorted.
fn found_with(run: &Value, third: impl Fn(&Value) -> String) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = run["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["class"].as_str().unwrap().to_owned(),
                d["order_id"].as_str().unwrap().to_owned(),
                third(d),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_day_reconciles_clean_and_each_injected_discrepancy_is_classed_and_audited() {
    let (pan, id_no) = (debit_pan(301), id_number());
    // Two lines a pass: the day is matched in several passes by order id.
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n[reconciliation]\nlines_per_pass = 2\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let date = tokenvault::domain::date::SettlementDate::of_time(unix_now()).to_string();

    // The day: a payment partly refunded, a paid order revoked by its
    // cancel, two plain payments, and an unpaid order closed.
    let p1 = w.paid(&token, "rc-1", 1_000).await;
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{p1}/refunds"),
            json!({ "refund_id": "r1", "amount": 400 }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let p2 = w.paid(&token, "rc-2", 500).await;
    let r = w
        .post("orchestrator", &format!("/v1/payments/{p2}/cancel"), json!(null))
        .await;
    assert_eq!(
        (r.status, r.json()["refunded"].clone()),
        (200, json!(500)),
        "{}",
        r.text()
    );
    let p3 = w.paid(&token, "rc-3", 300).await;
    let p5 = w.paid(&token, "rc-5", 200).await;
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000 }))
        .await;
    let r = w
        .post("orchestrator", "/v1/payments", debit_body(&token, "rc-4", 700))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let p4 = r.json()["payment_id"].as_str().unwrap().to_owned();
    let r = w
        .post("orchestrator", &format!("/v1/payments/{p4}/cancel"), json!(null))
        .await;
    assert_eq!(r.json()["status"], "closed", "{}", r.text());
    w.bank.set_faults(json!({})).await;

    let clean = w.reconcile(&date).await;
    assert_eq!(clean.status, 201, "{}", clean.text());
    let clean = clean.json();
    assert_eq!(
        (
            clean["version"].clone(),
            clean["lines"].clone(),
            count(&clean, "matched")
        ),
        (json!(1), json!(6), 6),
        "four payments, a refund and a revoke: {clean}"
    );
    assert_eq!(
        (clean["paid"].clone(), clean["refunded"].clone()),
        (json!(2_000), json!(900))
    );
    assert!(found(&clean).is_empty(), "{clean}");

    // The bank's file: p3 left out, p5's amount changed, p1 twice, and a
    // payment of p4 (closed here) that only the bank has.
    w.bank
        .set_faults(json!({ "statement": {
            "omit": [p3], "alter": [p5], "duplicate": [p1], "extra": [p4], "extra_amount": 700
        } }))
        .await;
    let run = w.reconcile(&date).await;
    assert_eq!(run.status, 201, "{}", run.text());
    let run = run.json();
    assert_eq!(run["version"], 2, "a date run again is its next version");
    assert_eq!(
        found(&run),
        [
            ("amount_mismatch".to_owned(), p5.clone(), String::new()),
            ("channel_only".to_owned(), p4.clone(), String::new()),
            ("duplicate".to_owned(), p1.clone(), String::new()),
            ("vault_only".to_owned(), p3.clone(), String::new()),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(count(&run, "matched"), 4, "{run}");
    assert_eq!(
        w.queue("auditor", "open").await,
        [
            ("amount_mismatch".to_owned(), p5.clone()),
            ("channel_only".to_owned(), p4.clone()),
            ("duplicate".to_owned(), p1.clone()),
            ("vault_only".to_owned(), p3.clone()),
        ],
        "the queue holds what the run left open"
    );

    // A cut file, a wrong digest and parts that do not make up the size
    // the bank names are refused before any matching, and take no version.
    for (faults, rule) in [
        (json!({ "statement": { "truncate": true } }), "truncated"),
        (json!({ "statement": { "bad_digest": true } }), "digest_mismatch"),
        (json!({ "statement": { "wrong_size": true } }), "parts"),
    ] {
        w.bank.set_faults(faults).await;
        let refused = w.reconcile(&date).await;
        assert_eq!(
            (
                refused.status,
                refused.json()["field"].clone(),
                refused.json()["rule"].clone()
            ),
            (422, json!("statement"), json!(rule)),
            "{}",
            refused.text()
        );
    }
    w.bank.set_faults(json!({})).await;

    // Each run's file is kept, sealed, and reads back as the bank sent it.
    for (kept, omitted) in [(&clean, false), (&run, true)] {
        let path = format!(
            "/v1/reconciliation/runs/{}/statement",
            kept["run_id"].as_str().unwrap()
        );
        let read = w.service.client("auditor").get(&path).await.unwrap();
        assert_eq!(read.status, 200, "{}", read.text());
        let text = read.text();
        let sha256 = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let hex: String = sha256.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(json!(hex), kept["digest"], "{text}");
        assert_eq!(!text.contains(p3.as_str()), omitted, "{text}");
        let denied = w.service.client("orchestrator").get(&path).await.unwrap();
        assert_eq!(denied.status, 403);
    }

    // The file in parts of some 100 bytes (a line or two each) reads as
    // the whole; it is the same file, so it is kept once.
    w.bank
        .set_faults(json!({ "statement": { "part_bytes": 100 } }))
        .await;
    let again = w.reconcile(&date).await.json();
    assert_eq!(
        (
            again["version"].clone(),
            count(&again, "matched"),
            again["digest"].clone()
        ),
        (json!(3), 6, clean["digest"].clone())
    );
    w.bank.set_faults(json!({})).await;
    // The corrected file stands: what the second run left open is superseded.
    assert!(w.queue("reconciler", "open").await.is_empty());
    assert_eq!(w.queue("reconciler", "resolved").await.len(), 4);
    assert_eq!(w.resolution_in(&run, "duplicate").await["action"], "superseded");

    // The command line: the same run, as a table, the discrepancies as CSV.
    w.bank.set_faults(json!({ "statement": { "omit": [p3] } })).await;
    let (json_out, csv_out) = (
        w.service.dir.path().join("run.json"),
        w.service.dir.path().join("run.csv"),
    );
    let cli = w
        .reconcile_cli(&date)
        .arg("--json")
        .arg(&json_out)
        .arg("--csv")
        .arg(&csv_out)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&cli.stdout).into_owned();
    assert_eq!(
        cli.status.code(),
        Some(1),
        "a discrepancy exits 1: {table}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        table.contains("version 4")
            && table
                .lines()
                .any(|l| l.contains("vault_only") && l.contains(" 1 ")),
        "{table}"
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    assert_eq!(written["version"], 4);
    let csv = std::fs::read_to_string(&csv_out).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "class,order_id,refund_id,channel_amount,vault_amount,state,action".to_owned(),
            format!("vault_only,{p3},,,300,open,")
        ]
    );
    w.bank.set_faults(json!({})).await;

    // The missing line is resolved by hand, once, with a reason that
    // carries no card number.
    let short = written["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["class"] == "vault_only")
        .unwrap()["discrepancy_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolve_path = format!("/v1/reconciliation/discrepancies/{short}/resolve");
    let resolve = |reason: &str| {
        w.post(
            "reconciler",
            &resolve_path,
            json!({ "action": "recovery_requested", "reason": reason }),
        )
    };
    let leaky = resolve("card 4242 4242 4242 4242 was paid").await;
    assert_eq!(
        (leaky.status, leaky.json()["field"].clone()),
        (422, json!("reason")),
        "{}",
        leaky.text()
    );
    let resolved = resolve("asked the bank for the missing line").await;
    assert_eq!(
        (
            resolved.status,
            resolved.json()["state"].clone(),
            resolved.json()["resolution"]["by"].clone()
        ),
        (200, json!("resolved"), json!("spiffe://tokenvault/reconciler")),
        "{}",
        resolved.text()
    );
    let twice = resolve("asked the bank a second time").await;
    assert_eq!(
        (twice.status, twice.json()["rule"].clone()),
        (409, json!("already_resolved"))
    );

    assert!(w.queue("reconciler", "open").await.is_empty());

    // The runs read back as stored, for the auditor too; not for the orchestrator.
    let path = format!("/v1/reconciliation/runs/{}", run["run_id"].as_str().unwrap());
    let read = w.service.client("auditor").get(&path).await.unwrap();
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(found(&read.json()), found(&run));
    assert!(
        read.json()["discrepancies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "resolved" && d["resolution"]["action"] == "superseded"),
        "{}",
        read.text()
    );
    assert_eq!(
        w.resolution_in(&written, "vault_only").await["action"],
        "recovery_requested"
    );
    let listed = w
        .service
        .client("auditor")
        .get(&format!("/v1/reconciliation/runs?channel=bank-a&date={date}"))
        .await
        .unwrap();
    let versions: Vec<u64> = listed.json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [4, 3, 2, 1], "{}", listed.text());
    let orchestrator = w.service.client("orchestrator");
    for path in [
        path.as_str(),
        "/v1/reconciliation/runs",
        "/v1/reconciliation/discrepancies",
        "/v1/reconciliation/ledger",
    ] {
        assert_eq!(orchestrator.get(path).await.unwrap().status, 403, "{path}");
    }
    let bad = w
        .service
        .client("auditor")
        .get("/v1/reconciliation/discrepancies?state=closed")
        .await
        .unwrap();
    assert_eq!(
        (bad.status, bad.json()["field"].clone()),
        (400, json!("state")),
        "{}",
        bad.text()
    );

    // The vault's own books agree: five payments on one token, no drift.
    let ledger = w.ledger_drift().await;
    assert_eq!(
        (
            ledger["tokens"].clone(),
            ledger["payments"].clone(),
            ledger["drift"].clone()
        ),
        (json!(1), json!(5), json!([])),
        "{ledger}"
    );

    // The trail: every run, and each discrepancy of the second one.
    let export = w.service.audit_export().await;
    let records: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |operation: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r["operation"] == operation && r["outcome"] == outcome)
            .count()
    };
    let runs: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "reconciliation.run" && r["outcome"] == "success")
        .filter(|r| r["detail"].as_str().unwrap_or("").starts_with("channel=bank-a"))
        .collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(
        runs[1]["detail"].as_str().unwrap().contains("version=2 lines=7"),
        "{}",
        runs[1]
    );
    let refusals: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "reconciliation.run" && r["outcome"] == "refused")
        .filter(|r| r["detail"].as_str().unwrap_or("").starts_with("statement."))
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    // Six or seven lines, two a pass: three or four passes, each writing
    // the lines it showed first (a pass may hold none: order ids are
    // random). Three files kept (the clean one once, though run twice);
    // a refused file smaller than one write is never written at all.
    let details = |operation: &str, start: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["operation"] == operation && r["outcome"] == "success")
            .filter_map(|r| r["detail"].as_str())
            .filter(|d| d.starts_with(start))
            .map(str::to_owned)
            .collect()
    };
    let shown = details("reconciliation.run", "lines shown: pass ");
    assert!(shown.iter().any(|d| d.contains(" of 3, ")), "{shown:?}");
    assert!(shown.iter().any(|d| d.contains(" of 4, ")), "{shown:?}");
    assert_eq!(details("reconciliation.run", "statement kept: part 0").len(), 3);
    assert!(details("reconciliation.run", "statement refused").is_empty());
    assert_eq!(of("reconciliation.discrepancy", "success"), 5);
    let resolutions = records
        .iter()
        .filter(|r| r["operation"] == "reconciliation.resolve" && r["outcome"] == "success")
        .filter(|r| r["detail"].as_str().unwrap_or("").contains(" action="))
        .count();
    assert_eq!(resolutions, 5, "four superseded, one by hand");
    assert!(records
        .iter()
        .any(|r| r["operation"] == "reconciliation.discrepancy"
            && r["detail"].as_str().unwrap().contains("class=vault_only")
            && r["detail"].as_str().unwrap().contains(&p3)));
    assert!(records.iter().any(|r| r["operation"] == "reconciliation.resolve"
        && r["outcome"] == "success"
        && r["detail"]
            .as_str()
            .unwrap()
            .contains("action=recovery_requested")));
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

/// 日切: with the bank cutting its day an instant after midnight, a
/// payment made today is on tomorrow's file. Today's run holds it as
/// `vault_only` (doubtful, not yet on a file); tomorrow's run matches it.
#[tokio::test]
async fn a_payment_past_the_banks_cut_off_is_matched_on_the_next_days_file() {
    let (pan, id_no) = (debit_pan(302), id_number());
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let today = tokenvault::domain::date::SettlementDate::of_time(unix_now());
    // A payment, its late refund, and a payment the bank settles
    // asynchronously (the vault hears of it by notification).
    let paid = w.paid(&token, "late-1", 800).await;
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/payments/{paid}/refunds"),
            json!({ "refund_id": "late-r1", "amount": 300 }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    w.bank.set_faults(json!({ "pay_mode": "async" })).await;
    let r = w
        .post("orchestrator", "/v1/payments", debit_body(&token, "late-2", 400))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let notified = r.json()["payment_id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..100 {
        let r = w
            .service
            .client("orchestrator")
            .get(&format!("/v1/payments/{notified}"))
            .await
            .unwrap();
        status = r.json()["status"].clone();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded");
    let mut late = vec![
        ("vault_only".to_owned(), paid.clone(), String::new()),
        ("vault_only".to_owned(), paid.clone(), "late-r1".to_owned()),
        ("vault_only".to_owned(), notified.clone(), String::new()),
    ];
    late.sort();
    w.bank
        .set_faults(json!({ "statement": { "cutoff_s": 86_399 } }))
        .await;
    let first = w.reconcile(&today.to_string()).await.json();
    assert_eq!(
        (first["lines"].clone(), found(&first)),
        (json!(0), late.clone()),
        "{first}"
    );
    assert_eq!(w.queue("reconciler", "open").await.len(), 3);
    let next = w.reconcile(&today.next().to_string()).await.json();
    assert_eq!(
        (next["lines"].clone(), count(&next, "matched"), found(&next)),
        (json!(3), 3, vec![]),
        "{next}"
    );
    // The next day's file settled the 短款, the refund among them:
    // carried forward, not open.
    let run = format!("/v1/reconciliation/runs/{}", first["run_id"].as_str().unwrap());
    let read = w.service.client("auditor").get(&run).await.unwrap().json();
    for d in read["discrepancies"].as_array().unwrap() {
        assert_eq!(
            (d["resolution"]["action"].clone(), d["resolution"]["by"].clone()),
            (json!("carried_forward"), json!("spiffe://tokenvault/reconciler")),
            "{d}"
        );
    }
    assert!(w.queue("reconciler", "open").await.is_empty());
    // Re-running either day gives the same result.
    let again = w.reconcile_on(&today.next().to_string()).await;
    assert_eq!(
        (again["version"].clone(), count(&again, "matched"), found(&again)),
        (json!(2), 3, vec![])
    );
    // The bank now lists them on both days' files: on today's, each is a
    // duplicate of the line tomorrow's file already showed.
    w.bank.set_faults(json!({ "statement": { "cutoff_s": 0 } })).await;
    let both = w.reconcile_on(&today.to_string()).await;
    let duplicates: Vec<_> = late
        .into_iter()
        .map(|(_, order, refund)| ("duplicate".to_owned(), order, refund))
        .collect();
    assert_eq!(found(&both), duplicates, "{both}");
}

/// Each discrepancy injected in a run of its own is classed as such and
/// resolved through the API with the action that fits it; the queue is
/// empty after each, and the trail holds each resolution.
#[tokio::test]
async fn each_injected_discrepancy_in_its_own_run_is_classed_and_resolved_through_the_api() {
    let (pan, id_no) = (debit_pan(307), id_number());
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n",
    );
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let date = tokenvault::domain::date::SettlementDate::of_time(unix_now()).to_string();
    let (a, b, c) = (
        w.paid(&token, "own-a", 100).await,
        w.paid(&token, "own-b", 200).await,
        w.paid(&token, "own-c", 300).await,
    );
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000 }))
        .await;
    let r = w
        .post("orchestrator", "/v1/payments", debit_body(&token, "own-d", 400))
        .await;
    let d = r.json()["payment_id"].as_str().unwrap().to_owned();
    let r = w
        .post("orchestrator", &format!("/v1/payments/{d}/cancel"), json!(null))
        .await;
    assert_eq!(r.json()["status"], "closed", "{}", r.text());
    let cases = [
        (json!({ "omit": [a] }), "vault_only", &a, "recovery_requested"),
        (json!({ "alter": [b] }), "amount_mismatch", &b, "acknowledged"),
        (json!({ "duplicate": [c] }), "duplicate", &c, "acknowledged"),
        (
            json!({ "extra": [d], "extra_amount": 400 }),
            "channel_only",
            &d,
            "refunded_at_channel",
        ),
    ];
    for (fault, class, order, action) in &cases {
        w.bank.set_faults(json!({ "statement": fault })).await;
        let run = w.reconcile_on(&date).await;
        assert_eq!(
            found(&run),
            [((*class).to_owned(), (*order).clone(), String::new())],
            "{run}"
        );
        let id = run["discrepancies"][0]["discrepancy_id"].as_str().unwrap();
        let r = w
            .post(
                "reconciler",
                &format!("/v1/reconciliation/discrepancies/{id}/resolve"),
                json!({ "action": action, "reason": format!("checked with the bank: {class}") }),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["resolution"]["action"].clone()),
            (200, json!(action)),
            "{}",
            r.text()
        );
        assert!(w.queue("reconciler", "open").await.is_empty(), "{class}");
    }
    let trail = w.service.audit_export().await;
    for (_, class, _, action) in &cases {
        assert!(
            trail.lines().any(|l| l.contains("\"reconciliation.resolve\"")
                && l.contains(&format!("action={action}"))
                && l.contains(&format!("class={class}"))),
            "{class} {action}"
        );
    }
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

/// The runs act by themselves where `[reconciliation]` says the rule is
/// clear: the bank took money for an order the vault closed (its close
/// raced the payer), and the run refunds it through the channel, once,
/// however often the date is run; a 短款 no file shows within the window is
/// escalated for recovery; and the daily run reconciles the day before at
/// start, as `local:reconciliation`. Metrics count the classes per channel.
#[tokio::test]
async fn runs_refund_money_taken_for_closed_orders_escalate_old_shorts_and_run_daily() {
    let (pan, id_no) = (debit_pan(303), id_number());
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n[reconciliation]\npaid_after_release = \"refund\"\nshort_window_days = 1\ndaily_at = \"00:00\"\ncheck_interval_s = 10\n",
    );
    let today = tokenvault::domain::date::SettlementDate::of_time(unix_now());
    let yesterday = tokenvault::domain::date::SettlementDate::of_time(unix_now() - 86_400).to_string();

    // The daily run has reconciled yesterday (an empty day) by itself.
    let mut daily = Value::Null;
    for _ in 0..100 {
        let r = w
            .service
            .client("auditor")
            .get(&format!("/v1/reconciliation/runs?date={yesterday}"))
            .await
            .unwrap();
        if let Some(run) = r.json()["runs"].as_array().and_then(|r| r.first()).cloned() {
            daily = run;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        (
            daily["created_by"].clone(),
            daily["lines"].clone(),
            daily["channel"].clone()
        ),
        (json!("local:reconciliation"), json!(0), json!("bank-a")),
        "{daily}"
    );

    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    let kept = w.paid(&token, "kept-1", 300).await;
    // The close races the payer: the bank answers closed, then takes the money.
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000, "close_races_payment": true }))
        .await;
    let raced = w.closed_then_paid(&token, "raced-1", 700).await;
    w.bank
        .set_faults(json!({ "statement": { "omit": [kept] } }))
        .await;

    let first = w.reconcile_on(&today.to_string()).await;
    assert_eq!(
        found(&first),
        [
            ("channel_only".to_owned(), raced.clone(), String::new()),
            ("vault_only".to_owned(), kept.clone(), String::new()),
        ],
        "{first}"
    );
    let refunded = w.resolution_in(&first, "channel_only").await;
    assert_eq!(
        (refunded["action"].clone(), refunded["by"].clone()),
        (
            json!("refunded_at_channel"),
            json!("spiffe://tokenvault/reconciler")
        ),
        "{refunded}"
    );
    assert_eq!(
        w.queue("reconciler", "open").await,
        [("vault_only".to_owned(), kept.clone())],
        "the refunded 长款 is off the queue"
    );

    // Two days on, no file showed the 短款: escalated for recovery.
    w.bank.set_faults(json!({})).await;
    w.reconcile_on(&today.next().next().to_string()).await;
    let escalated = w.resolution_in(&first, "vault_only").await;
    assert_eq!(escalated["action"], "recovery_requested", "{escalated}");
    assert!(escalated["reason"].as_str().unwrap().starts_with("automatic"));
    assert!(w.queue("reconciler", "open").await.is_empty());

    // The date again: the refund is on the file now and matches; the
    // payment the bank took is refunded by the same refund, not twice.
    let again = w.reconcile_on(&today.to_string()).await;
    assert_eq!(
        (count(&again, "matched"), found(&again)),
        (2, vec![("channel_only".to_owned(), raced.clone(), String::new())]),
        "the kept payment and the refund match: {again}"
    );
    assert_eq!(
        w.resolution_in(&again, "channel_only").await["action"],
        "refunded_at_channel"
    );
    let order = w
        .bank
        .orders()
        .await
        .into_iter()
        .find(|o| o["order_no"] == raced.as_str())
        .unwrap();
    assert_eq!(
        (order["amount"].clone(), order["refunded"].clone()),
        (json!(700), json!(700)),
        "{order}"
    );

    // The books agree; the metrics count each class per channel.
    let ledger = w.ledger_drift().await;
    assert_eq!(ledger["drift"], json!([]), "{ledger}");
    let metrics = w.service.client("monitor").get("/metrics").await.unwrap().text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tokenvault_reconciliation_findings_total{")
                && l.contains("class=\"channel_only\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
    let records: Vec<Value> = w
        .service
        .audit_export()
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resolved_by = |action: &str| {
        records
            .iter()
            .filter(|r| {
                r["operation"] == "reconciliation.resolve"
                    && r["outcome"] == "success"
                    && r["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("action={action}"))
            })
            .count()
    };
    assert_eq!(
        (
            resolved_by("refunded_at_channel"),
            resolved_by("recovery_requested")
        ),
        (2, 1)
    );
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan, NAME, &id_no, PHONE]).await;
}

/// Under `paid_after_release = "accept"`, money the bank took for an order
/// the vault closed is accepted as paid when the token's controls allow
/// one more use of that amount: the payment reads succeeded, the token
/// counts the use, the date re-run matches it and the books agree. A token
/// unbound meanwhile refuses, and that order is refunded instead.
#[tokio::test]
async fn accepting_as_paid_asks_the_tokens_controls_again_and_refunds_when_they_refuse() {
    let (pan_a, id_a) = (debit_pan(404), id_number());
    let (pan_b, id_b) = (debit_pan(405), id_number());
    let w = world(
        &[holder(&pan_a, &id_a), holder(&pan_b, &id_b)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n[reconciliation]\npaid_after_release = \"accept\"\n",
    );
    let today = tokenvault::domain::date::SettlementDate::of_time(unix_now()).to_string();
    let (_, token_a, _) = w.bound("u1", &pan_a, &id_a).await;
    let (binding_b, token_b, _) = w.bound("u2", &pan_b, &id_b).await;
    w.bank
        .set_faults(json!({ "pay_mode": "async", "notify_delay_ms": 600000, "close_races_payment": true }))
        .await;
    let accepted = w.closed_then_paid(&token_a, "raced-a", 500).await;
    let refused = w.closed_then_paid(&token_b, "raced-b", 600).await;
    let r = w
        .post(
            "orchestrator",
            &format!("/v1/bindings/{binding_b}/unbind"),
            json!(null),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    w.bank.set_faults(json!({})).await;

    let run = w.reconcile_on(&today).await;
    let resolutions = found_with(&run, |d| {
        d["resolution"]["action"].as_str().unwrap_or("open").to_owned()
    });
    let mut expected = vec![
        (
            "channel_only".to_owned(),
            accepted.clone(),
            "accepted_as_paid".to_owned(),
        ),
        (
            "channel_only".to_owned(),
            refused.clone(),
            "refunded_at_channel".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(resolutions, expected, "{run}");
    assert!(w.queue("reconciler", "open").await.is_empty());

    // The accepted payment is succeeded and its token counts the use.
    let payment = w
        .service
        .client("orchestrator")
        .get(&format!("/v1/payments/{accepted}"))
        .await
        .unwrap()
        .json();
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let token = w
        .service
        .client("orchestrator")
        .get(&format!("/v1/tokens/{token_a}"))
        .await
        .unwrap()
        .json();
    assert_eq!(
        (
            token["usage"]["uses_committed"].clone(),
            token["usage"]["amount_committed"].clone(),
            token["usage"]["uses_reserved"].clone()
        ),
        (json!(1), json!(500), json!(0)),
        "{token}"
    );

    // The refused order's money went back, once, by the run's refund.
    let order = w
        .bank
        .orders()
        .await
        .into_iter()
        .find(|o| o["order_no"] == refused.as_str())
        .unwrap();
    assert_eq!(order["refunded"], json!(600), "{order}");

    // Run again: the accepted payment now matches, the refund line too.
    let again = w.reconcile_on(&today).await;
    assert_eq!(
        (count(&again, "matched"), found(&again)),
        (
            2,
            vec![("channel_only".to_owned(), refused.clone(), String::new())]
        ),
        "{again}"
    );
    let ledger = w.ledger_drift().await;
    assert_eq!(ledger["drift"], json!([]), "{ledger}");

    let trail = w.service.audit_export().await;
    let accepted_records = trail
        .lines()
        .filter(|l| l.contains("\"reconciliation.resolve\"") && l.contains("action=accepted_as_paid"))
        .count();
    assert_eq!(accepted_records, 1, "one acceptance, not one per run");
    assert!(trail
        .lines()
        .any(|l| l.contains("\"token.reserve\"") && l.contains("\"refused\"")));
    w.service.assert_audit_intact().await;
    w.assert_no_plaintext(&[&pan_a, &pan_b, NAME, &id_a, &id_b, PHONE])
        .await;
}

/// While a run fetches a slow bank's file part by part, the service says
/// how far it is, and the CLI follows it (a plain line where its stderr
/// is not a terminal); once the run is written, nothing is running.
#[tokio::test]
async fn a_runs_progress_shows_while_it_fetches_and_the_cli_follows_it() {
    let (pan, id_no) = (debit_pan(306), id_number());
    let w = world(
        &[holder(&pan, &id_no)],
        &[],
        "[payment]\npoll_interval_ms = 60000\n",
    );
    let date = tokenvault::domain::date::SettlementDate::of_time(unix_now()).to_string();
    let (_, token, _) = w.bound("u1", &pan, &id_no).await;
    for order in ["pr-1", "pr-2", "pr-3"] {
        w.paid(&token, order, 100).await;
    }
    // Some 100 bytes a part, each answered after 400 ms: a few seconds.
    w.bank
        .set_faults(json!({ "latency_ms": 400, "statement": { "part_bytes": 100 } }))
        .await;
    let mut cli = w.reconcile_cli(&date);
    let cli = tokio::task::spawn_blocking(move || cli.output().unwrap());
    let path = format!("/v1/reconciliation/progress?channel=bank-a&date={date}");
    let mut seen = Value::Null;
    for _ in 0..200 {
        let r = w.service.client("auditor").get(&path).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let progress = r.json();
        if progress["stage"] == "fetching" && progress["done"].as_u64() > Some(0) {
            seen = progress;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen["running"], true, "{seen}");
    assert!(seen["done"].as_u64() < seen["of"].as_u64(), "{seen}");
    let cli = cli.await.unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("reconcile bank-a {date}: fetching")),
        "{stderr}"
    );
    let after = w.service.client("auditor").get(&path).await.unwrap().json();
    assert_eq!(
        (after["running"].clone(), after["stage"].clone()),
        (json!(false), Value::Null)
    );
    // The orchestrator may not look, and a date that is not one is refused.
    let denied = w.service.client("orchestrator").get(&path).await.unwrap();
    assert_eq!(denied.status, 403);
    let bad = w
        .service
        .client("auditor")
        .get("/v1/reconciliation/progress?channel=bank-a")
        .await
        .unwrap();
    assert_eq!(
        (
            bad.status,
            bad.json()["field"].clone(),
            bad.json()["rule"].clone()
        ),
        (400, json!("date"), json!("required"))
    );
}
