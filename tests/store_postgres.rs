//! Issue 19: the PostgreSQL store on a real PostgreSQL started by the test
//! (tests/common/postgres.rs). The backend conformance suite, unchanged;
//! a COMMIT whose answer is lost, both ways, through a proxy that kills the
//! backend between COMMIT and its answer; SIGKILL of a writer; the schema
//! version check; TLS to the database and start-up errors that say what
//! is wrong.

mod common;

use common::conformance as suite;
use common::pg_proxy::{Proxy, Trap};
use common::postgres::{self, Database};
use tokenvault::config::PostgresSection;
use tokenvault::store::{Backend, Batch, CommitError, PgStore, Store};

/// A fresh database migrated to this build's schema, and the store on it
/// through `Backend`, exactly as the service holds it.
async fn fresh() -> (Database, Backend) {
    let database = postgres::database();
    let store = PgStore::connect(&database.settings()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let store = PgStore::open(&database.settings()).await.expect("open");
    (database, Backend::Postgres(store))
}

#[tokio::test]
async fn batches_are_atomic() {
    suite::atomic_batches(&fresh().await.1).await;
}

#[tokio::test]
async fn preconditions_hold_exactly() {
    suite::preconditions(&fresh().await.1).await;
}

#[tokio::test]
async fn sequences_skip_failed_batches_and_seal_in_the_same_write() {
    suite::sequences_skip_and_seal(&fresh().await.1).await;
}

#[tokio::test]
async fn scans_are_ordered_and_page_without_gaps() {
    suite::ordered_scans_and_paging(&fresh().await.1).await;
}

#[tokio::test]
async fn injected_faults_are_reported_and_the_store_writes_on() {
    suite::faults_are_reported_never_hidden(fresh().await.1).await;
}

/// Keys that differ only past a 0xff byte, or by length, page in the same
/// order as on sled (bytea compares as bytes, shorter first).
#[tokio::test]
async fn binary_keys_order_and_prefix_as_on_sled() {
    let (_db, store) = fresh().await;
    let keys: [&[u8]; 6] = [b"p\xff", b"p\xff\x00", b"p\xff\xff", b"p\x00", b"p", b"q"];
    let mut batch = Batch::new();
    for key in keys {
        batch.put(key.to_vec(), b"v".to_vec());
    }
    store.commit(batch).await.unwrap();
    let got: Vec<Vec<u8>> = store
        .scan_prefix(b"p", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: Vec<Vec<u8>> = [b"p".as_slice(), b"p\x00", b"p\xff", b"p\xff\x00", b"p\xff\xff"]
        .map(<[u8]>::to_vec)
        .to_vec();
    assert_eq!(got, expected);
    let within: Vec<Vec<u8>> = store
        .scan_prefix(b"p\xff", Some(b"p\xff"), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(within, [b"p\xff\x00".to_vec(), b"p\xff\xff".to_vec()]);
}

/// Concurrent claims of one key: exactly one writer wins, every other gets
/// `Conflict`, and nothing is written twice (the unique index makes the
/// others wait, then see the winner's row).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_key_have_one_winner() {
    let (_db, store) = fresh().await;
    let mut tasks = Vec::new();
    for writer in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = Batch::new();
            batch
                .expect_absent(b"race".to_vec())
                .put(b"race".to_vec(), vec![writer]);
            batch.put(format!("by/{writer}").into_bytes(), vec![writer]);
            store.commit(batch).await
        }));
    }
    let mut winners = Vec::new();
    for (writer, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(()) => winners.push(writer as u8),
            Err(CommitError::Conflict) => {}
            Err(e) => panic!("writer {writer}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "one claim wins");
    assert_eq!(store.get(b"race").await.unwrap(), Some(vec![winners[0]]));
    let written = store.scan_prefix(b"by/", None, 100).await.unwrap();
    assert_eq!(written.len(), 1, "the losers wrote nothing");
}

/// A store reaching the cluster through the proxy (no TLS: the proxy reads
/// the protocol), on a fresh migrated database.
async fn behind_proxy() -> (Proxy, Backend, Backend) {
    let (database, direct) = fresh().await;
    let proxy = Proxy::start(postgres::cluster().port).await;
    let settings = PostgresSection {
        url: Some(tokenvault::config::PostgresUrl(
            format!(
                "host=127.0.0.1 port={} user={} dbname={}",
                proxy.port,
                postgres::cluster().user,
                database.name
            )
            .parse()
            .unwrap(),
        )),
        tls: false,
        ..PostgresSection::default()
    };
    let proxied = Backend::Postgres(PgStore::open(&settings).await.unwrap());
    (proxy, proxied, direct)
}

fn claim(key: &str, value: &str) -> Batch {
    let mut batch = Batch::new();
    batch
        .expect_absent(key.as_bytes().to_vec())
        .put(key.as_bytes().to_vec(), value.as_bytes().to_vec());
    batch
}

/// The connection is killed after the server committed and before its
/// answer arrives. The store settles the outcome with the write id: it
/// reports the write stored, with the batches that applied, and does not
/// run it again (which would now conflict with itself or double the
/// sealed counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_found_and_not_repeated() {
    let (proxy, store, direct) = behind_proxy().await;
    store.commit(claim("taken", "before")).await.unwrap();
    proxy.arm(Trap::LoseCommitAnswer);
    let seals = std::sync::atomic::AtomicU32::new(0);
    let seal = |applied: &[bool]| {
        seals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut b = Batch::new();
        b.put(b"sealed".to_vec(), format!("{applied:?}").into_bytes());
        Ok(b)
    };
    let outcome = store
        .apply_sequence(&[claim("new", "1"), claim("taken", "again")], &seal)
        .await
        .expect("a committed write is reported stored");
    assert_eq!(proxy.fired(), 1, "the answer to COMMIT was lost");
    assert_eq!(
        outcome.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false],
        "the batches that applied, as the committed transaction recorded them"
    );
    assert_eq!(
        seals.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not run again"
    );
    assert_eq!(direct.get(b"new").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(direct.get(b"taken").await.unwrap(), Some(b"before".to_vec()));
    assert_eq!(
        direct.get(b"sealed").await.unwrap(),
        Some(b"[true, false]".to_vec())
    );
    // And the store writes on through the proxy.
    store.commit(claim("after", "x")).await.unwrap();
}

/// COMMIT never reaches the server and the backend is killed: nothing was
/// committed. The store fences the write id, finds it absent, and writes
/// once more; the claim is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_never_arrived_is_retried_once() {
    let (proxy, store, direct) = behind_proxy().await;
    proxy.arm(Trap::DropCommit);
    store
        .commit(claim("once", "1"))
        .await
        .expect("retried after the lost COMMIT");
    assert_eq!(proxy.fired(), 1);
    assert_eq!(direct.get(b"once").await.unwrap(), Some(b"1".to_vec()));
    assert!(matches!(
        store.commit(claim("once", "2")).await,
        Err(CommitError::Conflict)
    ));
}

#[tokio::test]
async fn a_node_refuses_a_schema_older_or_newer_than_its_own() {
    let database = postgres::database();
    let e = PgStore::open(&database.settings())
        .await
        .err()
        .expect("unmigrated")
        .to_string();
    assert!(
        e.contains("version 0") && e.contains("version 1") && e.contains("store migrate"),
        "{e}"
    );
    let store = PgStore::connect(&database.settings()).await.unwrap();
    let first = store.migrate().await.unwrap();
    assert_eq!((first.from, first.to), (0, 1));
    let again = store.migrate().await.unwrap();
    assert_eq!((again.from, again.to), (1, 1), "migrating twice does nothing");
    PgStore::open(&database.settings()).await.expect("current schema");
    run_on(&database, "INSERT INTO tokenvault_schema (version) VALUES (2)").await;
    let e = PgStore::open(&database.settings())
        .await
        .err()
        .expect("newer")
        .to_string();
    assert!(
        e.contains("version 2") && e.contains("version 1") && e.contains("newer"),
        "{e}"
    );
}

/// Runs SQL in `database` as the test's administrator.
async fn run_on(database: &Database, sql: &str) {
    let (client, connection) = tokio_postgres::connect(&database.conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

#[tokio::test]
async fn start_up_errors_say_what_is_wrong() {
    let database = postgres::database();
    let mut settings = database.settings();
    let Some(_) = settings.ca_cert.as_ref() else {
        return; // an external server without TLS: nothing to check here
    };
    // TLS verified against a CA that did not sign the server's certificate.
    let other = tempfile::tempdir().unwrap();
    let layout = tokenvault::tls::pki::PkiLayout::new(other.path());
    tokenvault::tls::pki::init(&layout, false).unwrap();
    settings.ca_cert = Some(layout.ca_cert());
    let e = PgStore::connect(&settings)
        .await
        .err()
        .expect("wrong CA")
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // Nobody listening.
    let mut settings = database.settings();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.url = Some(tokenvault::config::PostgresUrl(
        format!("host=127.0.0.1 port={closed} user=postgres dbname=x")
            .parse()
            .unwrap(),
    ));
    let e = PgStore::connect(&settings)
        .await
        .err()
        .expect("unreachable")
        .to_string();
    assert!(
        e.contains("PostgreSQL") && e.to_lowercase().contains("connect"),
        "{e}"
    );
    // A database that does not exist.
    let mut settings = database.settings();
    settings.url = Some(tokenvault::config::PostgresUrl(
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=no_such_db",
            postgres::cluster().port
        )
        .parse()
        .unwrap(),
    ));
    let e = PgStore::connect(&settings)
        .await
        .err()
        .expect("no database")
        .to_string();
    assert!(e.contains("no_such_db"), "{e}");
}

/// The writer re-executes this test binary into `child_writer` below.
const CHILD_DB: &str = "TOKENVAULT_PG_CHILD_CONNINFO";

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let (database, _) = fresh().await;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &database.conninfo);
    // The child reaches the same cluster (started by this process).
    child.env("TOKENVAULT_TEST_PG_URL", external_url());
    let settings = database.settings();
    suite::acknowledged_writes_survive_sigkill(
        child,
        || async move { PgStore::open(&settings).await.unwrap() },
    )
    .await;
}

/// This process's cluster as a URL the child can be pointed at.
fn external_url() -> String {
    let c = postgres::cluster();
    format!("postgres://{}@{}:{}/postgres", c.user, c.host, c.port)
}

/// Not a test of its own: the SIGKILL test's writer process. Without the
/// variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Ok(conninfo) = std::env::var(CHILD_DB) else {
        return;
    };
    let settings = PostgresSection {
        url: Some(tokenvault::config::PostgresUrl(conninfo.parse().unwrap())),
        tls: false,
        ..PostgresSection::default()
    };
    suite::write_and_acknowledge_forever(PgStore::open(&settings).await.unwrap()).await;
}

/// The vault's committer runs the store on a runtime of its own thread. A
/// connection it causes to be made must still serve callers on the
/// service's runtime while that thread is idle (it once hung them: the
/// connection's socket and task lived on the committer's runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_from_another_runtime_serves_this_one() {
    let (database, _) = fresh().await;
    let mut settings = database.settings();
    settings.pool_size = 1;
    let store = PgStore::open(&settings).await.unwrap();
    // Close the pool's one connection, so the next user makes a new one.
    postgres::cluster().execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database.name
    ));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let elsewhere = store.clone();
    let (made, idle) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(elsewhere.commit(claim("from-elsewhere", "1")))
            .unwrap();
        made.send(()).unwrap();
        // Idle, as the committer is between groups: this runtime is not driven.
        std::thread::sleep(std::time::Duration::from_secs(8));
    });
    idle.recv().unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), store.get(b"from-elsewhere")).await;
    assert_eq!(
        read.expect("a read on this runtime does not wait for the other to run")
            .unwrap(),
        Some(b"1".to_vec())
    );
    thread.join().unwrap();
}

/// Deadlocks reported for `database` so far.
fn deadlocks(database: &Database) -> i64 {
    let name = database.name.clone();
    postgres::cluster()
        .admin(move |client| async move {
            let row = client
                .query_one(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = $1",
                    &[&name],
                )
                .await?;
            Ok(row.get::<_, i64>(0))
        })
        .unwrap()
}

/// One crossed write: precondition on `fixed/{locked}` (batch or seal as
/// `locked_in_seal` says), write `fixed/{written}` in the other.
async fn crossed(
    store: Backend,
    locked: &str,
    written: &str,
    tag: String,
    locked_in_seal: bool,
) -> Result<(), CommitError> {
    let mut lock = Batch::new();
    lock.expect_equals(format!("fixed/{locked}").into_bytes(), b"1".to_vec());
    let mut write = Batch::new();
    write
        .put(format!("fixed/{written}").into_bytes(), b"1".to_vec())
        .put(tag.into_bytes(), b"x".to_vec());
    if locked_in_seal {
        // The batch's keys are locked first, the seal's after them.
        let seal = move |_: &[bool]| Ok(lock.clone());
        store.apply_sequence(&[write], &seal).await.map(|_| ())
    } else {
        lock.append(write);
        store.commit(lock).await
    }
}

/// A fresh store holding `fixed/a` and `fixed/b`.
async fn two_rows() -> (Database, Backend) {
    let (database, store) = fresh().await;
    let mut setup = Batch::new();
    setup
        .put(b"fixed/a".to_vec(), b"1".to_vec())
        .put(b"fixed/b".to_vec(), b"1".to_vec());
    store.commit(setup).await.unwrap();
    (database, store)
}

/// `writers` crossed writes at once, half "lock a, write b" and half
/// "lock b, write a", each tagging `count/{round}/{writer}`; all must land.
async fn crossed_round(store: &Backend, round: u32, writers: u32, locked_in_seal: bool) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (locked, written) = if writer % 2 == 0 { ("a", "b") } else { ("b", "a") };
        let tag = format!("count/{round}/{writer}");
        tasks.push(tokio::spawn(crossed(
            store.clone(),
            locked,
            written,
            tag,
            locked_in_seal,
        )));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("a crossed writer lands (a deadlocked one is retried, not failed)");
    }
    let written = store
        .scan_prefix(format!("count/{round}/").as_bytes(), None, 100)
        .await
        .unwrap();
    assert_eq!(written.len(), writers as usize);
}

/// Writers whose single batches name the same two rows crosswise: every
/// key of a write is locked in key order in one statement, so none
/// deadlocks and all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossed_writers_lock_in_one_order_and_never_deadlock() {
    let (database, store) = two_rows().await;
    for round in 0..5 {
        crossed_round(&store, round, 16, false).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(deadlocks(&database), 0);
}

/// A write's seal is locked after its batches, so two sequences whose
/// batch and seal name the same rows crosswise can deadlock in
/// PostgreSQL; the one it aborts (40P01) is retried inside the store, and
/// every writer succeeds. Rounds repeat until the database has reported a
/// deadlock, so the retry is known to have run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_that_deadlock_are_retried_and_all_succeed() {
    let (database, store) = two_rows().await;
    for round in 0..10 {
        // Two each way: each deadlock waits out PostgreSQL's
        // deadlock_timeout (1 s), so more would queue past the statement
        // timeout behind each other.
        crossed_round(&store, round, 4, true).await;
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        if deadlocks(&database) > 0 {
            return;
        }
    }
    panic!("no deadlock in 10 rounds: the retry was not exercised");
}

/// `tokenvault serve` on a database it cannot reach stops at once with a
/// message naming PostgreSQL and the cause; `store migrate` on the
/// embedded backend says it has nothing to migrate.
#[test]
fn the_service_names_an_unreachable_database_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("tokenvault.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\npolicies_dir = \"{}\"\n[store]\nbackend = \"postgres\"\n[store.postgres]\n\
             url = \"host=127.0.0.1 port={closed} user=tokenvault dbname=tokenvault\"\ntls = false\nconnect_timeout_ms = 1000\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenvault"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["serve"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("PostgreSQL") && stderr.contains("onnect"),
        "{stderr}"
    );
    let (code, stderr) = run(&["store", "migrate"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("PostgreSQL") && stderr.contains("onnect"),
        "{stderr}"
    );
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let (code, stderr) = run(&["store", "migrate"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("sled store needs no migration"), "{stderr}");
}

/// SECURITY.md's least-privilege role: a role granted only what it lists
/// (no DDL, no ownership) runs every part of the store the vault uses.
#[tokio::test]
async fn a_role_with_only_the_documented_grants_runs_the_store() {
    let (database, _) = fresh().await;
    let role = format!("node_{}", database.name);
    postgres::cluster().execute(&format!("CREATE ROLE {role} LOGIN"));
    run_on(
        &database,
        &format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON tokenvault_kv, tokenvault_writes TO {role};
             GRANT SELECT ON tokenvault_schema TO {role};"
        ),
    )
    .await;
    let node = Database {
        name: database.name.clone(),
        conninfo: database.conninfo.replace(
            &format!("user={}", postgres::cluster().user),
            &format!("user={role}"),
        ),
    };
    assert_ne!(node.conninfo, database.conninfo);
    let store = Backend::Postgres(
        PgStore::open(&node.settings())
            .await
            .expect("the node role opens the store"),
    );
    suite::atomic_batches(&store).await;
    suite::preconditions(&store).await;
    suite::sequences_skip_and_seal(&store).await;
    suite::ordered_scans_and_paging(&store).await;
}
