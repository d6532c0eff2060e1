//! Invariant 7: every sensitive operation has an audit record, or it did not
//! happen. Each vault operation appends exactly one record naming the actor,
//! the operation, the object and the outcome; and when the trail cannot be
//! appended, the operation fails and nothing is stored (fail closed).

mod common;

use tokenvault::audit::Actor;
use tokenvault::domain::time::Timestamp;
use tokenvault::store::{Batch, Store};
use tokenvault::vault::VaultError;

#[tokio::test]
async fn each_operation_appends_exactly_one_record() {
    let tv = common::open_vault().await;
    let v = &tv.vault;
    let me = Actor {
        identity: "spiffe://tokenvault/test".into(),
        origin: "127.0.0.1:1".into(),
        request_id: "req-1".into(),
    };
    let count = |records: &[tokenvault::audit::ChainRecord]| records.len();
    let all = || async { v.audit_export(&Actor::local("probe")).await.unwrap() };

    let before = count(&all().await);
    let card = v.store_card(&me, "4242424242424242").await.unwrap();
    let token = v
        .issue_token(
            &me,
            &card.card_ref,
            common::controls(2, 100, 200),
            Timestamp::now(),
        )
        .await
        .unwrap();
    v.token(&me, &token.number).await.unwrap();
    v.suspend_token(&me, &token.number, Timestamp::now())
        .await
        .unwrap();
    assert!(v.store_card(&me, "4242424242424241").await.is_err());
    assert!(v
        .suspend_token(&me, &token.number, Timestamp::now())
        .await
        .is_err());
    let records = all().await;
    // Exports are audited too, under the probe's identity, and filtered out.
    let mine: Vec<_> = records[before..]
        .iter()
        .filter(|r| r.identity == me.identity)
        .collect();
    let summary: Vec<(&str, &str, Option<&str>)> = mine
        .iter()
        .map(|r| (r.operation.as_str(), r.outcome.as_str(), r.detail.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("card.store", "success", None),
            (
                "token.issue",
                "success",
                Some(format!("card={}", card.card_ref).as_str())
            ),
            ("token.read", "success", None),
            ("token.suspend", "success", None),
            ("card.store", "refused", Some("pan.luhn")),
            (
                "token.suspend",
                "refused",
                Some("lifecycle.suspended_to_suspended")
            ),
        ]
    );
    assert_eq!(mine[0].object.as_deref(), Some(card.card_ref.as_str()));
    assert_eq!(mine[1].object.as_deref(), Some(token.number.as_str()));
    assert!(mine
        .iter()
        .all(|r| r.origin == "127.0.0.1:1" && r.request_id == "req-1"));
    let report = v.audit_verify(&me).await.unwrap();
    assert!(report.intact());
}

#[tokio::test]
async fn when_the_trail_cannot_be_written_nothing_happens() {
    let tv = common::open_vault().await;
    let v = &tv.vault;
    let me = common::actor();
    v.store_card(&me, "378282246310005").await.unwrap();
    // Roll the chain head back to nothing, as a careless restore might: the
    // next append would land on an existing record, so the vault refuses.
    let mut batch = Batch::new();
    batch.delete(b"audit/head".to_vec());
    tv.store.commit(batch).await.unwrap();
    let (reopened, store) = {
        drop(tv.vault);
        drop(tv.store);
        common::open_with_store(tv.dir.path()).await
    };
    let result = reopened.store_card(&me, "5555555555554444").await;
    assert!(matches!(result, Err(VaultError::Contention)), "{result:?}");
    assert_eq!(
        store.scan_prefix(b"card/", None, 10).await.unwrap().len(),
        1,
        "the second card was not stored"
    );
}
