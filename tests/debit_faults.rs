//! Issue 16, item 2, for the debit: each of its writes (the reservation
//! with the payment and the opening's record, then the settlement with the
//! payment's status and the answer) in turn meets each injected store fault
//! (`common::faults`) in a running process. Afterwards the audit chain
//! verifies, the bank holds at most one order per payment, the client's
//! retry of the order pays exactly once, and every held use of the token
//! belongs to a payment in flight and every committed one to a paid payment.

mod common;

use common::faults::{Fault, FaultyStore};
use common::stack::{self, actor, debit_of};
use serde_json::json;
use tokenvault::domain::ids::MerchantId;
use tokenvault::domain::time::Timestamp;
use tokenvault::orchestration::payment::OrderId;
use tokenvault::orchestration::{OrchestrationError, PaymentStatus, PaymentView};
use tokenvault::vault::Alone;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_write_of_a_debit_pays_once_and_strands_nothing() {
    let (w, _, token, config) = stack::bound_then_stopped("u-faults", 6_161).await;
    let (store, faults) = FaultyStore::new(stack::open_store(&config).await);
    let (vault, node) = stack::node(&config, store).await;
    let expires = Timestamp::now().seconds() + 3_000;
    let token_number = stack::token_number(&token);
    let merchant = MerchantId::parse(stack::MERCHANT).unwrap();
    let (mut paid, mut in_flight) = (0u32, 0u32);
    for fault in [Fault::FailApply, Fault::FailFlush, Fault::FailAfterApply] {
        for nth in 1..=3 {
            let order = format!("fault-{}-{nth}", fault_name(fault));
            faults.arm(fault, nth);
            let first = node
                .debit(&vault, &actor(), debit_of(&token, &order, expires), &Alone)
                .await;
            assert!(
                faults.has_fired() || first.is_ok(),
                "{order}: the fault fired or the debit ended first"
            );
            faults.disarm();
            let report = vault.audit_verify(&actor()).await.unwrap();
            assert!(report.intact(), "{order}: {report:?}");
            // What the bank decided is learned by the settler; then the
            // client retries the order.
            node.settle_open(&vault, &actor()).await.unwrap();
            let answer = match first {
                Ok((view, _)) if view.status == PaymentStatus::Succeeded => view,
                _ => retried(&node, &vault, &token, &order, expires).await,
            };
            let at_bank = w.bank.orders().await;
            let at_bank = at_bank
                .iter()
                .filter(|o| o["order_no"] == json!(answer.id.as_str()))
                .count();
            match answer.status {
                PaymentStatus::Succeeded => {
                    assert_eq!(at_bank, 1, "{order}: paid at the bank exactly once");
                    paid += 1;
                }
                // The fault hid whether the first write landed before the
                // bank was asked: the payment waits, its use held, until
                // the settler learns the bank's word or its grace period
                // fails it. It is never sent a second time.
                status if status.in_flight() => {
                    assert!(at_bank <= 1, "{order}: at most one order at the bank");
                    in_flight += 1;
                }
                status => panic!("{order}: unexpected {status:?}"),
            }
            let stored = node
                .payment_by_order(&vault, &actor(), &merchant, &OrderId::parse(&order).unwrap())
                .await
                .unwrap();
            assert_eq!(stored.status, answer.status, "{order}: as stored");
            let usage = vault.token(&actor(), &token_number).await.unwrap().usage;
            assert_eq!(
                (usage.uses_reserved, usage.uses_committed),
                (in_flight, paid),
                "{order}: every held use belongs to a payment in flight, every committed one to a paid payment"
            );
        }
    }
    assert!(paid >= 6, "most faulted debits still pay on retry ({paid} of 9)");
    let report = vault.audit_verify(&actor()).await.unwrap();
    assert!(report.intact(), "{report:?}");
}

async fn retried<S: tokenvault::store::Store>(
    node: &tokenvault::orchestration::Orchestrator,
    vault: &tokenvault::vault::Vault<S>,
    token: &str,
    order: &str,
    expires: i64,
) -> PaymentView {
    match node
        .debit(vault, &actor(), debit_of(token, order, expires), &Alone)
        .await
    {
        Ok((view, _)) => view,
        Err(OrchestrationError::Vault(e)) => panic!("{order}: the retry failed in the vault: {e}"),
        Err(e) => panic!("{order}: the retry failed: {e}"),
    }
}

fn fault_name(fault: Fault) -> &'static str {
    match fault {
        Fault::FailApply => "refused",
        Fault::FailFlush => "unflushed",
        Fault::FailAfterApply => "torn",
        Fault::CorruptRead => "corrupt",
        Fault::Abort => "abort",
    }
}
