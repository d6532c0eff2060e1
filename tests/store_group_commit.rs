//! The sled store under the `Store` trait: conditional atomic batches, paged
//! prefix scans, and group commit that neither deadlocks (sled #1308) nor
//! makes each writer wait for its own fsync.

use std::sync::Arc;
use std::time::Duration;
use tokenvault::store::{Batch, CommitError, SledStore, Store};

fn open() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_concurrent_durable_writers_all_finish_and_share_flushes() {
    const WRITERS: usize = 256;
    let (_dir, store) = open();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut batch = Batch::new();
            batch
                .expect_absent(format!("w/{i:04}"))
                .put(format!("w/{i:04}"), vec![i as u8; 64]);
            store.commit(batch).await
        }));
    }
    // A deadlock shows up as this timeout, not as a hung test run. Generous on
    // purpose: it guards liveness, it does not measure speed.
    let all = tokio::time::timeout(Duration::from_secs(120), futures_join(tasks))
        .await
        .expect("all 256 durable writers must finish: no flush deadlock");
    for r in all {
        r.expect("task").expect("commit");
    }
    let flushes = store.stats().flushes;
    assert!(flushes >= 1);
    assert!(
        (flushes as usize) < WRITERS,
        "group commit shares fsyncs: {flushes} flushes for {WRITERS} writers"
    );
    let rows = store.scan_prefix(b"w/", None, 1000).await.unwrap();
    assert_eq!(rows.len(), WRITERS);
}

async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    out
}

#[tokio::test]
async fn preconditions_decide_all_or_nothing() {
    let (_dir, store) = open();
    let mut b = Batch::new();
    b.expect_absent("a").put("a", "1").put("b", "1");
    store.commit(b).await.unwrap();

    // One failing precondition: nothing of the batch is written.
    let mut b = Batch::new();
    b.expect_equals("a", "1")
        .expect_absent("b")
        .put("a", "2")
        .put("c", "2");
    assert!(matches!(store.commit(b).await, Err(CommitError::Conflict)));
    assert_eq!(store.get(b"a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get(b"c").await.unwrap(), None);

    let mut b = Batch::new();
    b.expect_equals("a", "1")
        .expect_equals("b", "1")
        .put("a", "2")
        .delete("b");
    store.commit(b).await.unwrap();
    assert_eq!(store.get(b"a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(store.get(b"b").await.unwrap(), None);

    let mut b = Batch::new();
    b.expect("a", Some(b"2")).expect("b", None).put("b", "3");
    store.commit(b).await.unwrap();
}

#[tokio::test]
async fn prefix_scans_page_in_key_order() {
    let (_dir, store) = open();
    let mut b = Batch::new();
    for i in 0..25 {
        b.put(format!("p/{i:03}"), "x");
    }
    b.put("o/000", "other").put("q/000", "other");
    store.commit(b).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(b"p/", after.as_deref(), 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().0.clone());
        seen.extend(page.into_iter().map(|(k, _)| String::from_utf8(k).unwrap()));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("p/{i:03}")).collect();
    assert_eq!(seen, expected);
    // A cursor before the prefix still starts at the prefix.
    let page = store.scan_prefix(b"p/", Some(b"a"), 1).await.unwrap();
    assert_eq!(page[0].0, b"p/000");
}
