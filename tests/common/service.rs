//! Starts the real `tokenvault serve` binary on 127.0.0.1 port 0 with a
//! development PKI made by the test, and calls it over mutual TLS the way a
//! client would. stderr (the service log) is kept in a file for scanning.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokenvault::tls::pki::{self, DevCa, PkiLayout, Validity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Options {
    pub allow_tls12: bool,
    pub reveals_per_hour: u32,
    pub body_limit_bytes: usize,
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub per_source_connections: usize,
    pub handshake_timeout_ms: u64,
    /// Appended to the generated config file (gateway channels, binding policy).
    pub extra_config: String,
    /// Lines added to the generated `[tls]` and `[limits]` tables.
    pub extra_tls: String,
    pub extra_limits: String,
    /// The backend the service stores on. Tests of sled's own files (a
    /// full or frozen disk under the data directory) pin sled, tests of
    /// the database pin PostgreSQL; every other test runs on the backend
    /// the run selected (`TOKENVAULT_TEST_BACKEND`).
    pub backend: TestBackend,
    /// Lines added to the generated `[store.postgres]` table.
    pub extra_postgres: String,
    /// Lines added to the generated `[store]` table (PostgreSQL only).
    pub extra_store: String,
    /// The node's name (`node_name`), for several nodes on one database.
    pub node_name: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestBackend {
    #[default]
    Selected,
    Sled,
    Postgres,
}

impl TestBackend {
    fn is_postgres(self) -> bool {
        match self {
            TestBackend::Selected => super::postgres::selected(),
            TestBackend::Sled => false,
            TestBackend::Postgres => true,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_tls12: false,
            reveals_per_hour: 10,
            body_limit_bytes: 16 * 1024,
            max_connections: 64,
            max_handshakes: 1024,
            per_source_connections: 0,
            handshake_timeout_ms: 5_000,
            extra_config: String::new(),
            extra_tls: String::new(),
            extra_limits: String::new(),
            backend: TestBackend::Selected,
            extra_postgres: String::new(),
            // Short leases: a killed node's restart waits for its own
            // name's lease to end (`server::leases`).
            extra_store: "lease_ttl_s = 3\n".to_owned(),
            node_name: None,
        }
    }
}

pub struct Service {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub keys: PkiLayout,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

impl Service {
    pub fn start(options: Options) -> Service {
        let mut service = Service::prepare(options);
        service.spawn();
        service
    }

    /// PKI, policies and config written, process not started: start bank
    /// simulators on `keys` first, add their channels with `add_config`,
    /// then `spawn`.
    pub fn prepare(options: Options) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let keys = PkiLayout::new(dir.path().join("keys"));
        pki::init(&keys, false).expect("development PKI made by the test");
        copy_tree(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")),
            &dir.path().join("policies"),
        );
        let config_path = dir.path().join("tokenvault.toml");
        std::fs::write(
            &config_path,
            format!(
                "{}listen = \"127.0.0.1:0\"\n[tls]\nallow_tls12 = {}\ncreate_dev_pki = false\n{}\n[limits]\nreveals_per_hour = {}\nbody_limit_bytes = {}\nmax_connections = {}\nmax_handshakes = {}\nper_source_connections = {}\nhandshake_timeout_ms = {}\n{}\n{}",
                options.node_name.as_ref().map(|n| format!("node_name = \"{n}\"\n")).unwrap_or_default(),
                options.allow_tls12, options.extra_tls, options.reveals_per_hour, options.body_limit_bytes, options.max_connections,
                options.max_handshakes, options.per_source_connections, options.handshake_timeout_ms,
                options.extra_limits, options.extra_config
            ),
        )
        .unwrap();
        if options.backend.is_postgres() {
            let database = super::postgres::database();
            let mut config = std::fs::read_to_string(&config_path).unwrap();
            let store = database.store_config();
            let store = store.replacen(
                "[store.postgres]",
                &format!("{}\n[store.postgres]", options.extra_store),
                1,
            );
            config.push_str(&store);
            config.push_str(&options.extra_postgres);
            std::fs::write(&config_path, config).unwrap();
            let migrate = Command::new(env!("CARGO_BIN_EXE_tokenvault"))
                .args(["store", "migrate", "--config", config_path.to_str().unwrap()])
                .output()
                .expect("run tokenvault store migrate");
            assert!(
                migrate.status.success(),
                "store migrate: {}{}",
                String::from_utf8_lossy(&migrate.stdout),
                String::from_utf8_lossy(&migrate.stderr)
            );
        }
        let log_path = dir.path().join("service.log");
        Service {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            keys,
            config_path,
            log_path,
            child: None,
        }
    }

    /// Another node on this service's database: its own folder with a copy
    /// of this node's keys (the same KEK and PKI), policies and config,
    /// under `name`. Start this node first (it makes the KEK), then
    /// `spawn` the other.
    pub fn another_node(&self, name: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&self.dir.path().join("keys"), &dir.path().join("keys"));
        copy_tree(&self.dir.path().join("policies"), &dir.path().join("policies"));
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let config: String = config
            .lines()
            .filter(|line| !line.starts_with("node_name"))
            .map(|line| format!("{line}\n"))
            .collect();
        let config_path = dir.path().join("tokenvault.toml");
        std::fs::write(&config_path, format!("node_name = \"{name}\"\n{config}")).unwrap();
        Service {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            keys: PkiLayout::new(dir.path().join("keys")),
            log_path: dir.path().join("service.log"),
            config_path,
            dir,
            child: None,
        }
    }

    /// Appends TOML to the config file (before `spawn`).
    pub fn add_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config_path).unwrap();
        config.push_str(text);
        std::fs::write(&self.config_path, config).unwrap();
    }

    /// (Re)starts the process on the same data, keys and config.
    pub fn spawn(&mut self) {
        self.spawn_with(&[]);
    }

    /// `spawn` with more `serve` arguments (`--log-format json`).
    pub fn spawn_with(&mut self, extra: &[&str]) {
        let mut args = vec!["serve", "--config", self.config_path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (child, addr) = spawn_announcing(&args, &self.log_path, "tokenvault listening on https://");
        self.addr = addr;
        self.child = Some(child);
    }
}

/// The log level the started processes run with: `debug` for tests (the log
/// is scanned for plaintext), quieter for the load harness.
pub static CHILD_LOG: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Starts this crate's binary with `args`, its stderr appended to `log`,
/// and waits for the stdout line `announce` followed by the address.
pub fn spawn_announcing(args: &[&str], log: &Path, announce: &'static str) -> (Child, SocketAddr) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenvault"))
        .args(args)
        .env("RUST_LOG", CHILD_LOG.get().copied().unwrap_or("debug"))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("spawn tokenvault");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix(announce) {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => (child, addr),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "{args:?} did not start; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        }
    }
}

impl Service {
    /// A break-glass reveal under dual control: break-glass requests it
    /// with `reason`, reveal-approver approves, break-glass reveals with
    /// Idempotency-Key `key`. The reveal's answer (the request and the
    /// approval must succeed).
    pub async fn reveal_approved(&self, card_ref: &str, reason: &str, key: &str) -> Response {
        let request = self.reveal_request(card_ref, reason, key).await;
        self.approve_reveal(&request, key).await;
        self.client("break-glass")
            .post_json(
                &format!("/v1/cards/{card_ref}/reveal"),
                Some(key),
                &serde_json::json!({ "request_id": request }),
            )
            .await
            .unwrap()
    }

    /// A reveal request by break-glass: its id.
    pub async fn reveal_request(&self, card_ref: &str, reason: &str, key: &str) -> String {
        let r = self
            .client("break-glass")
            .post_json(
                &format!("/v1/cards/{card_ref}/reveal-requests"),
                Some(&format!("{key}-request")),
                &serde_json::json!({ "reason": reason }),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["request_id"].as_str().unwrap().to_owned()
    }

    /// reveal-approver approves `request`.
    pub async fn approve_reveal(&self, request: &str, key: &str) {
        let r = self
            .client("reveal-approver")
            .post_empty(
                &format!("/v1/reveal-requests/{request}/approve"),
                &format!("{key}-approve"),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// SIGKILL and wait: the sled files may then be opened by the test.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (`HUP`, `TERM`) to the service process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running process's id (to read its resident memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the service's records are on disk, everything written so far
    /// flushed there: sled's data directory, or the PostgreSQL cluster's
    /// (its data files and WAL, after a CHECKPOINT).
    pub fn stored_dir(&self) -> PathBuf {
        let config = tokenvault::config::ServiceConfig::load(&self.config_path).expect("service config");
        if config.store.backend != tokenvault::config::BackendKind::Postgres {
            return self.data_dir();
        }
        super::postgres::cluster().files()
    }

    /// The service's store, as it opens it (stop the service first on sled).
    pub async fn open_store(&self) -> tokenvault::store::Backend {
        let config = tokenvault::config::ServiceConfig::load(&self.config_path).expect("service config");
        super::open_backend(&config).await
    }

    /// The whole audit trail as JSON lines, read by the auditor.
    pub async fn audit_export(&self) -> String {
        self.client("auditor")
            .get("/v1/audit/export")
            .await
            .unwrap()
            .text()
    }

    /// `GET /v1/audit/verify`, read by the auditor.
    pub async fn audit_verify(&self) -> serde_json::Value {
        self.client("auditor")
            .get("/v1/audit/verify")
            .await
            .unwrap()
            .json()
    }

    /// Asserts that `GET /v1/audit/verify` finds the trail intact.
    pub async fn assert_audit_intact(&self) {
        let verify = self.audit_verify().await;
        assert_eq!(verify["intact"], true, "{verify}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A client with a freshly issued certificate from the service's CA
    /// (URI SAN `spiffe_uri`, CN `name`), written into the service's folder.
    /// Returns the client and the certificate's path (to revoke it).
    pub fn issued_client(&self, name: &str, spiffe_uri: &str, validity: Validity) -> (Client, PathBuf) {
        let (cert_pem, key_pem) = DevCa::load(&self.keys)
            .unwrap()
            .issue_client(Some(spiffe_uri), name, validity)
            .unwrap();
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}.key.pem"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let client = Client::new(self.addr, &self.keys.ca_cert(), Some((&cert, &key)), Tls::V13);
        (client, cert)
    }

    /// A TLS 1.3 client with the role's certificate from the test's PKI.
    pub fn client(&self, role: &str) -> Client {
        Client::new(
            self.addr,
            &self.keys.ca_cert(),
            Some((&self.keys.client_cert(role), &self.keys.client_key(role))),
            Tls::V13,
        )
    }
}

impl Service {
    /// SIGKILL, restart, and check that every card in `acknowledged` is
    /// there and the audit chain verifies (invariant 8).
    pub async fn kill_and_find_cards(&mut self, acknowledged: &[String]) {
        self.kill();
        self.spawn();
        let reader = self.client("orchestrator");
        for card in acknowledged {
            let r = reader.get(&format!("/v1/cards/{card}")).await.unwrap();
            assert_eq!(r.status, 200, "acknowledged {card} lost: {}", r.text());
        }
        let verify = self.client("auditor").get("/v1/audit/verify").await.unwrap();
        assert_eq!(verify.status, 200, "{}", verify.text());
        assert_eq!(verify.json()["intact"], true, "{}", verify.text());
    }

    /// Stores test card `n` as card capture under Idempotency-Key
    /// `{key}-{n}`: (status, Retry-After, body or null).
    pub async fn store_card(&self, key: &str, n: u64) -> (u16, Option<String>, serde_json::Value) {
        let pan = super::random_pan(n * 7919);
        let r = self
            .client("card-capture")
            .post_json(
                "/v1/cards",
                Some(&format!("{key}-{n}")),
                &serde_json::json!({ "pan": pan }),
            )
            .await
            .unwrap();
        let retry = r.header("retry-after").map(str::to_owned);
        let body = if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            r.json()
        };
        (r.status, retry, body)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Copy)]
pub enum Tls {
    V13,
    V12Only,
}

pub struct Client {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(addr: SocketAddr, ca: &Path, identity: Option<(&Path, &Path)>, tls: Tls) -> Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in tokenvault::pem::certificates(ca).unwrap() {
            roots.add(cert).unwrap();
        }
        let versions: &[&rustls::SupportedProtocolVersion] = match tls {
            Tls::V13 => &[&rustls::version::TLS13],
            Tls::V12Only => &[&rustls::version::TLS12],
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    tokenvault::pem::certificates(cert).unwrap(),
                    tokenvault::pem::private_key(key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Client {
            addr,
            config: Arc::new(config),
        }
    }

    /// A fresh mutual-TLS connection, to write raw bytes on.
    pub async fn connect(&self) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.map_err(|e| e.to_string())
    }

    /// One request on a fresh connection (full handshake every time).
    /// `Err` when the connection or handshake is refused.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let mut tls = self.connect().await?;
        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        tls.write_all(body).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        tls.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        parse_response(&raw)
    }

    pub async fn get(&self, path: &str) -> Result<Response, String> {
        self.send("GET", path, &[], None).await
    }

    /// A POST with no body, to a route that takes none.
    pub async fn post_empty(&self, path: &str, key: &str) -> Result<Response, String> {
        self.send("POST", path, &[("Idempotency-Key", key)], None).await
    }

    /// A POST of `json`; `null` sends no body (for routes that take none).
    pub async fn post_json(
        &self,
        path: &str,
        key: Option<&str>,
        json: &serde_json::Value,
    ) -> Result<Response, String> {
        let mut headers = Vec::new();
        if let Some(k) = key {
            headers.push(("Idempotency-Key", k));
        }
        if json.is_null() {
            return self.send("POST", path, &headers, None).await;
        }
        headers.push(("Content-Type", "application/json"));
        let body = serde_json::to_vec(json).unwrap();
        self.send("POST", path, &headers, Some(&body)).await
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response (connection closed)")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..end])
                    .map_err(|e| e.to_string())?
                    .trim(),
                16,
            )
            .map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
