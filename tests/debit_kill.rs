//! A debit killed at each of its writes leaves no stranded reservation and
//! no lost payment, and a debit attempt is two writes.
//!
//! The parent binds a card through the real service, stops it, and re-runs
//! this test binary as a child that opens the same data directory behind a
//! store that aborts the process on its Nth write during one debit (so
//! writes 1..N-1 are durable and the Nth never lands). The bank simulator
//! keeps running across children. After each child the parent reopens the
//! directory and checks the token's usage against the payments, the audit
//! chain, and the bank's orders; then it lets the settler resolve what the
//! bank already decided, and retries the order as a client would (one
//! payment, paid once).

mod common;

use common::faults::{Fault, FaultyStore};
use common::stack::{self, actor, debit_of, MERCHANT};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use tokenvault::domain::ids::MerchantId;
use tokenvault::domain::time::Timestamp;
use tokenvault::orchestration::payment::OrderId;
use tokenvault::orchestration::{OrchestrationError, Orchestrator, PaymentStatus, PaymentView};
use tokenvault::store::Backend;
use tokenvault::vault::{Alone, Vault};

const CHILD_CONFIG: &str = "TOKENVAULT_DEBIT_KILL_CONFIG";

/// The child: one debit, aborting on write `abort_at`. A no-op unless the
/// parent set `CHILD_CONFIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_debit_until_abort() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let config = Path::new(&config);
    let (store, faults) = FaultyStore::new(stack::open_store(config).await);
    let (vault, orchestrator) = stack::node(config, store).await;
    // Armed only now: opening the vault writes too.
    let before = faults.writes();
    faults.arm(Fault::Abort, var("ABORT_AT").parse().unwrap());
    let debit = debit_of(&var("TOKEN"), &var("ORDER"), var("EXPIRES").parse().unwrap());
    let result = orchestrator.debit(&vault, &actor(), debit, &Alone).await;
    let outcome = match result {
        Ok((view, _)) => view.status.as_str().to_owned(),
        Err(e) => format!("error:{}", e.code().code()),
    };
    println!("DONE {} {outcome}", faults.writes() - before);
}

/// Runs one child; `Some((writes, outcome))` when its debit finished
/// before write `abort_at`, `None` when it was aborted there.
fn run_child(
    config: &Path,
    abort_at: usize,
    token: &str,
    order: &str,
    expires: i64,
) -> Option<(usize, String)> {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_debit_until_abort",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG, config)
        .env("ABORT_AT", abort_at.to_string())
        .env("TOKEN", token)
        .env("ORDER", order)
        .env("EXPIRES", expires.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if std::env::var("DEBIT_KILL_DEBUG").is_ok() {
        eprintln!(
            "child {abort_at}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The harness prints its `test … ` prefix on the same line.
    let done = stdout
        .lines()
        .find_map(|l| l.split_once("DONE ").map(|(_, rest)| rest))?;
    let (writes, outcome) = done.split_once(' ').unwrap();
    Some((writes.parse().unwrap(), outcome.to_owned()))
}

async fn payment(vault: &Vault<Backend>, orchestrator: &Orchestrator, order: &str) -> Option<PaymentView> {
    let merchant = MerchantId::parse(MERCHANT).unwrap();
    let order = OrderId::parse(order).unwrap();
    match orchestrator
        .payment_by_order(vault, &actor(), &merchant, &order)
        .await
    {
        Ok(view) => Some(view),
        Err(OrchestrationError::PaymentNotFound) => None,
        Err(e) => panic!("reading the payment: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debit_killed_at_each_write_strands_no_reservation_and_loses_no_payment() {
    let (w, _, token, config) = stack::bound_then_stopped("u-kill", 4_242).await;
    let expires = Timestamp::now().seconds() + 3_000;
    let token_number = stack::token_number(&token);
    // Payments still in flight (their reservations held), and paid ones.
    let (mut in_flight, mut paid) = (0u32, 0u32);
    let mut writes_of_a_whole_debit = Vec::new();
    for (scenario, bank_down) in [("paid", false), ("down", true)] {
        w.bank.set_faults(json!({ "unavailable": bank_down })).await;
        for abort_at in 1.. {
            let order = format!("{scenario}-{abort_at}");
            let bank_before = w.bank.orders().await.len();
            let finished = run_child(&config, abort_at, &token, &order, expires);
            let (vault, orchestrator) = stack::node(&config, stack::open_store(&config).await).await;
            let found = payment(&vault, &orchestrator, &order).await;
            let report = vault.audit_verify(&actor()).await.unwrap();
            assert!(report.intact(), "{order}: the audit chain is intact: {report:?}");
            let bank_orders = w.bank.orders().await;
            match &found {
                None => assert_eq!(
                    bank_orders.len(),
                    bank_before,
                    "{order}: no payment, so nothing reached the bank"
                ),
                Some(view) => {
                    let at_bank = bank_orders
                        .iter()
                        .filter(|o| o["order_no"] == json!(view.id.as_str()))
                        .count();
                    assert!(at_bank <= 1, "{order}: one order at the bank at most");
                    if bank_down {
                        assert_eq!(at_bank, 0, "{order}: a bank that is down took nothing");
                    }
                }
            }
            // What the bank decided is learned by the settler; a payment the
            // bank never saw stays in flight (the settler fails it after its
            // grace period), its reservation held and accounted for.
            orchestrator.settle_open(&vault, &actor()).await.unwrap();
            if !bank_down {
                // The client retries the order: one payment, paid once.
                let (view, _) = orchestrator
                    .debit(&vault, &actor(), debit_of(&token, &order, expires), &Alone)
                    .await
                    .unwrap();
                assert_eq!(view.status, PaymentStatus::Succeeded, "{order}");
                let at_bank = w.bank.orders().await;
                let at_bank = at_bank
                    .iter()
                    .filter(|o| o["order_no"] == json!(view.id.as_str()));
                assert_eq!(at_bank.count(), 1, "{order}: the retry paid nothing twice");
            }
            let settled = payment(&vault, &orchestrator, &order).await;
            match settled.as_ref().map(|v| v.status) {
                None | Some(PaymentStatus::Unsent) => {}
                Some(PaymentStatus::Succeeded) => paid += 1,
                Some(status) if status.in_flight() => in_flight += 1,
                Some(status) => panic!("{order}: unexpected status {status:?}"),
            }
            let usage = vault.token(&actor(), &token_number).await.unwrap().usage;
            assert_eq!(
                (usage.uses_reserved, usage.uses_committed),
                (in_flight, paid),
                "{order}: every held use belongs to a payment in flight, every committed one to a paid payment ({settled:?})"
            );
            drop((vault, orchestrator));
            if let Some((writes, outcome)) = finished {
                let expected = if bank_down {
                    "error:channel-unavailable"
                } else {
                    "succeeded"
                };
                assert_eq!(outcome, expected, "{order}");
                writes_of_a_whole_debit.push((scenario, writes));
                break;
            }
            assert!(abort_at < 10, "{order}: a debit ends within a few writes");
        }
    }
    // An attempt that the bank answered is two writes: the reservation with
    // the payment and the gateway's opening, then the settlement with the
    // payment's status. A bank that is down: the same two (the second gives
    // the reservation back, the payment unsent), then the audited refusal.
    assert_eq!(writes_of_a_whole_debit, vec![("paid", 2), ("down", 3)]);
}
