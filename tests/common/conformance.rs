//! The backend conformance suite: what every `Store` must do for the vault
//! to be correct on it, written once against the trait. A backend's own test
//! file opens fresh stores and calls each check; sled's is
//! tests/store_conformance.rs, and a new backend adds a file like it and
//! changes nothing here.

use super::faults::{Fault, FaultyStore};
use std::future::Future;
use tokenvault::store::{Batch, CommitError, Store};

fn put(key: &str, value: &str) -> Batch {
    let mut batch = Batch::new();
    batch.put(key.as_bytes().to_vec(), value.as_bytes().to_vec());
    batch
}

async fn value<S: Store>(store: &S, key: &str) -> Option<String> {
    store
        .get(key.as_bytes())
        .await
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

/// A batch applies whole or not at all: a failed precondition anywhere in it
/// writes none of its keys; deletes and puts land together.
pub async fn atomic_batches<S: Store>(store: &S) {
    store.commit(put("a/1", "one")).await.unwrap();
    let mut mixed = put("a/2", "two");
    mixed.delete(b"a/1".to_vec()).expect_absent(b"a/3".to_vec());
    mixed.put(b"a/3".to_vec(), b"three".to_vec());
    store.commit(mixed).await.unwrap();
    assert_eq!(value(store, "a/1").await, None);
    assert_eq!(value(store, "a/2").await.as_deref(), Some("two"));
    assert_eq!(value(store, "a/3").await.as_deref(), Some("three"));

    let mut refused = put("a/4", "four");
    refused.put(b"a/5".to_vec(), b"five".to_vec());
    refused.expect_absent(b"a/2".to_vec());
    assert!(matches!(store.commit(refused).await, Err(CommitError::Conflict)));
    assert_eq!(
        value(store, "a/4").await,
        None,
        "nothing of a refused batch is written"
    );
    assert_eq!(value(store, "a/5").await, None);
}

/// `expect_absent`, `expect_equals` and `expect(current)` hold exactly.
pub async fn preconditions<S: Store>(store: &S) {
    let mut first = put("p/k", "v1");
    first.expect_absent(b"p/k".to_vec());
    store.commit(first).await.unwrap();
    let mut stale = put("p/k", "v3");
    stale.expect_equals(b"p/k".to_vec(), b"v0".to_vec());
    assert!(matches!(store.commit(stale).await, Err(CommitError::Conflict)));
    let mut current = put("p/k", "v2");
    current.expect(b"p/k".to_vec(), Some(b"v1".as_slice()));
    store.commit(current).await.unwrap();
    assert_eq!(value(store, "p/k").await.as_deref(), Some("v2"));
    let mut gone = put("p/other", "x");
    gone.expect(b"p/none".to_vec(), None);
    store.commit(gone).await.unwrap();
    assert_eq!(value(store, "p/other").await.as_deref(), Some("x"));
}

/// `apply_sequence`: each batch is checked against the state the ones
/// before it left, a failing one is skipped and the rest still apply, the
/// seal is told which applied and joins the same write; a seal whose own
/// precondition fails writes nothing at all.
pub async fn sequences_skip_and_seal<S: Store>(store: &S) {
    let claim = |key: &str, value: &str| {
        let mut b = put(key, value);
        b.expect_absent(key.as_bytes().to_vec());
        b
    };
    let batches = [claim("s/a", "1"), claim("s/a", "2"), claim("s/b", "3")];
    let seal = |applied: &[bool]| {
        let count = applied.iter().filter(|ok| **ok).count();
        Ok(put("s/sealed", &format!("{applied:?}:{count}")))
    };
    let durables = store.apply_sequence(&batches, &seal).await.unwrap();
    let applied: Vec<bool> = durables.iter().map(Option::is_some).collect();
    assert_eq!(applied, [true, false, true]);
    for durable in durables.into_iter().flatten() {
        durable.await.unwrap();
    }
    assert_eq!(
        value(store, "s/a").await.as_deref(),
        Some("1"),
        "the skipped batch wrote nothing"
    );
    assert_eq!(value(store, "s/b").await.as_deref(), Some("3"));
    assert_eq!(
        value(store, "s/sealed").await.as_deref(),
        Some("[true, false, true]:2")
    );

    let refuse = |_: &[bool]| {
        let mut b = Batch::new();
        b.expect_absent(b"s/a".to_vec());
        Ok(b)
    };
    let outcome = store.apply_sequence(&[claim("s/c", "4")], &refuse).await;
    assert!(matches!(outcome, Err(CommitError::Conflict)));
    assert_eq!(value(store, "s/c").await, None, "a refused seal writes nothing");
}

/// Prefix scans return keys in byte order, stay inside the prefix, and page
/// with `after` without skipping or repeating; `get_many` answers each key
/// in order.
pub async fn ordered_scans_and_paging<S: Store>(store: &S) {
    let mut batch = Batch::new();
    for i in (0..50).rev() {
        batch.put(format!("o/{i:03}").into_bytes(), vec![i as u8]);
    }
    batch.put(b"o0".to_vec(), b"outside".to_vec());
    batch.put(b"n/999".to_vec(), b"before".to_vec());
    store.commit(batch).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(b"o/", after.as_deref(), 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seen.extend(page.into_iter().map(|(k, _)| String::from_utf8(k).unwrap()));
    }
    let expected: Vec<String> = (0..50).map(|i| format!("o/{i:03}")).collect();
    assert_eq!(seen, expected);
    // `after` before the prefix starts at the prefix.
    let from_start = store.scan_prefix(b"o/", Some(b"a"), 2).await.unwrap();
    assert_eq!(from_start[0].0, b"o/000");
    // Many keys at once: each value in the keys' order, a key asked twice
    // answered twice, a missing one as none.
    let keys: Vec<Vec<u8>> = [&b"o/007"[..], b"missing", b"o/042", b"o/007", b"o0"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let values = store.get_many(&keys).await.unwrap();
    assert_eq!(
        values,
        vec![
            Some(vec![7]),
            None,
            Some(vec![42]),
            Some(vec![7]),
            Some(b"outside".to_vec())
        ]
    );
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

/// Under the fault wrapper: a refused write leaves nothing; a write whose
/// flush fails is not acknowledged; a write the backend failed after
/// applying may or may not be there, but the store answers and writes on.
pub async fn faults_are_reported_never_hidden<S: Store>(store: S) {
    let (store, faults) = FaultyStore::new(store);
    faults.arm(Fault::FailApply, 1);
    assert!(matches!(
        store.commit(put("f/1", "x")).await,
        Err(CommitError::Store(_))
    ));
    assert_eq!(value(&store.inner, "f/1").await, None);
    faults.arm(Fault::FailFlush, 1);
    assert!(
        store.commit(put("f/2", "x")).await.is_err(),
        "an unflushed write is not acknowledged"
    );
    faults.arm(Fault::FailAfterApply, 1);
    assert!(store.commit(put("f/3", "x")).await.is_err());
    faults.arm(Fault::CorruptRead, 1);
    store.commit(put("f/4", "clean")).await.unwrap();
    assert_ne!(
        value(&store, "f/4").await.as_deref(),
        Some("clean"),
        "the read was corrupted"
    );
    assert_eq!(
        value(&store, "f/4").await.as_deref(),
        Some("clean"),
        "and the next is not"
    );
    store.commit(put("f/5", "after")).await.unwrap();
    assert_eq!(value(&store.inner, "f/5").await.as_deref(), Some("after"));
}

/// Every key a writer was told is stored survives a SIGKILL of its process.
/// `child` is the re-executed test process writing `k/<n>` and printing
/// `acked <n>` after each commit returns; this kills it mid-stream and then
/// opens the store again with `reopen`.
pub async fn acknowledged_writes_survive_sigkill<S, F, Fut>(child: std::process::Command, reopen: F)
where
    S: Store,
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
{
    use std::io::BufRead;
    let mut child = { child }
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child writer");
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked.push(n.parse::<u64>().unwrap());
            if acked.len() == 300 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no last flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "the child acknowledged its writes");
    let store = reopen().await;
    for n in acked {
        assert!(
            store.get(format!("k/{n:06}").as_bytes()).await.unwrap().is_some(),
            "acknowledged write k/{n:06} lost after SIGKILL"
        );
    }
}

/// The child side of `acknowledged_writes_survive_sigkill`: writes forever,
/// acknowledging each durable commit on stdout.
#[allow(clippy::print_stdout)]
pub async fn write_and_acknowledge_forever<S: Store>(store: S) {
    use std::io::Write;
    for n in 0u64.. {
        let mut batch = put(&format!("k/{n:06}"), "durable");
        batch.expect_absent(format!("k/{n:06}").into_bytes());
        store.commit(batch).await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "acked {n}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs `check` on a fresh store from `open`.
pub async fn on_fresh<S, F, C, Fut>(open: F, check: C)
where
    S: Store,
    F: Fn(&std::path::Path) -> S,
    C: FnOnce(S) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    check(open(dir.path())).await;
}
