//! A storage stall, for real: the data directory is an ext4 file system on
//! a loop device, frozen with `fsfreeze` while the service runs, so every
//! write and fsync to it blocks in the kernel as on a hung disk. No request
//! hangs past its time-out (writes answer 503 with Retry-After), TLS
//! handshakes and `/health` keep being served, `/ready` says not ready;
//! once thawed the service serves writes again by itself, a retried key
//! answers once, and every acknowledged write survives a SIGKILL (issue 17,
//! item 5; invariants 8 and 13).
//!
//! Loop devices and `fsfreeze` need root (as CI and this machine run); a
//! run without it fails here, saying so, rather than passing untested.

mod common;

use common::service::{Options, Service, TestBackend};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REQUEST_TIMEOUT_MS: u64 = 1_500;

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} (this test needs root for a loop mount and fsfreeze): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext4 file system in a sparse image file, loop-mounted at `dir`;
/// unmounted on drop.
struct LoopMount(PathBuf);

impl LoopMount {
    fn mount(image: &Path, dir: &Path) -> LoopMount {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::File::create(image)
            .unwrap()
            .set_len(128 * 1024 * 1024)
            .unwrap();
        run("mkfs.ext4", &["-q".as_ref(), "-F".as_ref(), image.as_os_str()]);
        run(
            "mount",
            &["-o".as_ref(), "loop".as_ref(), image.as_os_str(), dir.as_os_str()],
        );
        LoopMount(dir.to_owned())
    }

    /// Blocks every write to the file system until the guard is dropped.
    fn freeze(&self) -> Frozen<'_> {
        run("fsfreeze", &["-f".as_ref(), self.0.as_os_str()]);
        Frozen(self)
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A frozen file system, thawed on drop (also when an assertion fails, so
/// no process is left blocked in the kernel).
struct Frozen<'a>(&'a LoopMount);

impl Frozen<'_> {
    fn thaw(self) {}
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.0 .0).status();
    }
}

/// `future`, or a failure naming `what` if it outlives `bound`: the
/// property under test is that nothing hangs.
async fn within<T>(bound: Duration, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(bound, future)
        .await
        .unwrap_or_else(|_| panic!("{what} hung past {bound:?} while the disk was frozen"))
}

#[tokio::test]
async fn a_frozen_disk_times_requests_out_keeps_handshakes_served_and_recovers() {
    let mut service = Service::prepare(Options {
        backend: TestBackend::Sled, // sled's data directory is frozen
        extra_limits: format!("request_timeout_ms = {REQUEST_TIMEOUT_MS}\n"),
        ..Options::default()
    });
    let disk = LoopMount::mount(
        &service.dir.path().join("data.img"),
        &service.dir.path().join("data"),
    );
    service.spawn();
    let mut acknowledged = Vec::new();
    for n in 1..=10 {
        let (status, _, body) = service.store_card("stall", n).await;
        assert_eq!(status, 201, "{body}");
        acknowledged.push(body["card_ref"].as_str().unwrap().to_owned());
    }

    let frozen = disk.freeze();
    // Writes in flight while the disk is frozen: each answers within its
    // time-out, 503 with Retry-After, never a hang and never a 2xx.
    let hang_guard = Duration::from_millis(REQUEST_TIMEOUT_MS) + Duration::from_secs(10);
    let stalled = [11, 12, 13, 14];
    let writes = async {
        let (a, b, c, d) = tokio::join!(
            service.store_card("stall", stalled[0]),
            service.store_card("stall", stalled[1]),
            service.store_card("stall", stalled[2]),
            service.store_card("stall", stalled[3]),
        );
        [a, b, c, d]
    };
    for (status, retry, body) in within(hang_guard, "a write", writes).await {
        assert_eq!(status, 503, "a write to a frozen disk: {body}");
        assert!(retry.is_some(), "503 without Retry-After: {body}");
    }
    // Handshakes and liveness do not queue behind the store.
    for _ in 0..20 {
        let health = within(
            Duration::from_secs(5),
            "a handshake and /health",
            service.client("monitor").get("/health"),
        )
        .await
        .unwrap();
        assert_eq!(health.status, 200, "{}", health.text());
    }
    // /ready says the store is not serving once a commit has waited on it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = within(hang_guard, "/ready", service.client("monitor").get("/ready"))
            .await
            .unwrap();
        if ready.status == 503 {
            assert!(ready.header("retry-after").is_some(), "{}", ready.text());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready still {} on a frozen disk: {}",
            ready.status,
            ready.text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    frozen.thaw();
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.client("monitor").get("/ready").await.unwrap().status != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready 30 s after the thaw:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A key whose request timed out answers once on retry: the write it
    // left queued either landed (replayed) or did not (done now).
    for &n in &stalled {
        let (status, _, body) = service.store_card("stall", n).await;
        assert!(matches!(status, 200 | 201), "retry of stall-{n}: {status} {body}");
        acknowledged.push(body["card_ref"].as_str().unwrap().to_owned());
    }
    for n in 15..=17 {
        let (status, _, body) = service.store_card("stall", n).await;
        assert_eq!(status, 201, "after the thaw: {body}");
        acknowledged.push(body["card_ref"].as_str().unwrap().to_owned());
    }

    service.kill_and_find_cards(&acknowledged).await;
    service.kill();
    drop(disk);
}
