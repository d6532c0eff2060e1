//! A real PostgreSQL for the tests, one cluster per test binary with a
//! database per test. Started from the system's binaries (`initdb`,
//! `postgres`; as root they run as the `postgres` user) in a temporary
//! directory on a free loopback port, fsync on, TLS on with a server
//! certificate from a development CA made here. A watchdog shell owns the
//! server: when this process exits, however it exits, the watchdog's stdin
//! closes and it stops the server and deletes the directory.
//!
//! `TOKENVAULT_TEST_PG_URL` (a URL of a role that may create databases)
//! points the tests at an existing server instead; TLS is then off.
//!
//! `TOKENVAULT_TEST_BACKEND=postgres` runs the service harness
//! (`Service`) on PostgreSQL: the end-to-end suites, unchanged.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokenvault::tls::pki::{self, PkiLayout};

/// Whether the service harness runs on PostgreSQL in this run.
pub fn selected() -> bool {
    match std::env::var("TOKENVAULT_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sled") | Err(_) => false,
        Ok(other) => panic!("TOKENVAULT_TEST_BACKEND={other}: expected sled or postgres"),
    }
}

pub struct Cluster {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Option<String>,
    /// The cluster's folder (None for an external server): its data
    /// directory, WAL included, and its log; what the at-rest tests scan.
    folder: Option<PathBuf>,
    /// The CA that signed the server's certificate (None: TLS off).
    pub ca_cert: Option<PathBuf>,
    /// The watchdog; kept for the life of the process (its stdin is the
    /// pipe whose closing stops the server).
    watchdog: Mutex<Option<Watchdog>>,
}

/// The shell that owns the server: `crash` and `start` on its stdin, each
/// answered with a line on its stdout; end of input stops the server and
/// deletes its directory.
struct Watchdog {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| match std::env::var("TOKENVAULT_TEST_PG_URL") {
        Ok(url) => Cluster::external(&url),
        Err(_) => Cluster::start(),
    })
}

/// A fresh, migrated-to-nothing database: its key=value connection string.
pub fn database() -> Database {
    cluster().create_database()
}

pub struct Database {
    pub name: String,
    /// `host=… port=… user=… dbname=…` (and sslmode).
    pub conninfo: String,
}

impl Database {
    /// `[store]` for the service's config file.
    pub fn store_config(&self) -> String {
        let cluster = cluster();
        let tls = match &cluster.ca_cert {
            Some(ca) => format!("tls = true\nca_cert = \"{}\"\n", ca.display()),
            None => "tls = false\n".to_owned(),
        };
        format!(
            "\n[store]\nbackend = \"postgres\"\n[store.postgres]\nurl = \"{}\"\n{tls}",
            self.conninfo
        )
    }

    /// The settings as the store takes them.
    pub fn settings(&self) -> tokenvault::config::PostgresSection {
        store_section(&self.store_config()).postgres
    }
}

/// The `[store]` table of a config text (`Database::store_config`).
pub fn store_section(config: &str) -> tokenvault::config::StoreSection {
    let table: toml::Table = toml::from_str(config).unwrap();
    table["store"].clone().try_into().unwrap()
}

pub fn bin_dir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("TOKENVAULT_TEST_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates.extend(["/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .expect("PostgreSQL's initdb and postgres: install PostgreSQL (.ci/run does) or set TOKENVAULT_TEST_PG_URL")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program` run as the `postgres` OS user when this process is root
/// (initdb and postgres refuse root).
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn external(url: &str) -> Cluster {
        let config: tokio_postgres::Config = url.parse().expect("TOKENVAULT_TEST_PG_URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("TOKENVAULT_TEST_PG_URL: a TCP host is needed, found {other:?}"),
        };
        Cluster {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            folder: None,
            ca_cert: None,
            watchdog: Mutex::new(None),
        }
    }

    fn start() -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tokenvault-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let data = dir.join("data");
        let pki = PkiLayout::new(dir.join("pki"));
        pki::init(&pki, false).expect("the database's certificate");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown {} to postgres", dir.display());
        }
        let initdb = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        // Loopback only; both with and without TLS (the store's tests use
        // both); trust, since the tests own the cluster.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        {
            let port = free_port();
            let script = format!(
                "start() {{\n\
                   '{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
                   -c fsync=on -c synchronous_commit=on -c max_connections=400 -c shared_buffers=64MB \
                   -c ssl=on -c ssl_cert_file='{cert}' -c ssl_key_file='{key}' \
                   >>'{dir}/postgres.log' 2>&1 & pid=$!\n\
                 }}\n\
                 stop() {{ kill -$1 $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; }}\n\
                 start\n\
                 while read command; do\n\
                   case $command in\n\
                     crash) stop QUIT; echo crashed;;\n\
                     start) start; echo started;;\n\
                   esac\n\
                 done\n\
                 stop INT\n\
                 rm -rf '{dir}'\n",
                postgres = bin.join("postgres").display(),
                data = data.display(),
                dir = dir.display(),
                cert = pki.server_cert().display(),
                key = pki.server_key().display(),
            );
            let mut child = as_postgres(Path::new("/bin/sh"))
                .args(["-c", &script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start postgres");
            let watchdog = Watchdog {
                commands: child.stdin.take().unwrap(),
                answers: BufReader::new(child.stdout.take().unwrap()),
                child,
            };
            let cluster = Cluster {
                host: "127.0.0.1".to_owned(),
                port,
                user: "postgres".to_owned(),
                password: None,
                folder: Some(dir.clone()),
                ca_cert: Some(pki.ca_cert()),
                watchdog: Mutex::new(Some(watchdog)),
            };
            if cluster.wait_ready(Duration::from_secs(30)) {
                return cluster;
            }
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            cluster.stop_server();
            panic!("postgres did not start on port {port}; its log:\n{log}");
        }
    }

    fn conninfo(&self, dbname: &str) -> String {
        let mut s = format!(
            "host={} port={} user={} dbname={dbname}",
            self.host, self.port, self.user
        );
        if let Some(p) = &self.password {
            s.push_str(&format!(" password={p}"));
        }
        s
    }

    fn wait_ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.admin(|_| async { Ok(()) }).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Runs `f` on a connection to the `postgres` database, on a thread of
    /// its own (callers may be inside a runtime already).
    pub fn admin<F, Fut, T>(&self, f: F) -> Result<T, tokio_postgres::Error>
    where
        F: FnOnce(tokio_postgres::Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
        T: Send + 'static,
    {
        let conninfo = self.conninfo("postgres");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                f(client).await
            })
        })
        .join()
        .unwrap()
    }

    /// Runs one SQL text as the administrator.
    pub fn execute(&self, sql: &str) {
        let sql = sql.to_owned();
        self.admin(move |client| async move { client.batch_execute(&sql).await })
            .unwrap_or_else(|e| panic!("admin SQL failed: {e:?}"));
    }

    fn create_database(&self) -> Database {
        let name = format!(
            "tv_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.execute(&format!("CREATE DATABASE {name}"));
        Database {
            conninfo: self.conninfo(&name),
            name,
        }
    }

    /// Stops the server (fast shutdown) and waits for it: the watchdog's
    /// stdin closes, as at process exit.
    pub fn stop_server(&self) {
        if let Some(Watchdog {
            mut child, commands, ..
        }) = self.watchdog.lock().unwrap().take()
        {
            drop(commands);
            let _ = child.wait();
        }
    }

    fn command(&self, command: &str, answer: &str) {
        let mut guard = self.watchdog.lock().unwrap();
        let watchdog = guard.as_mut().expect("a cluster started by the tests");
        writeln!(watchdog.commands, "{command}").unwrap();
        watchdog.commands.flush().unwrap();
        let mut line = String::new();
        watchdog.answers.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), answer, "the watchdog's answer to {command}");
    }

    /// Kills the server as a crash would (SIGQUIT: immediate shutdown, no
    /// checkpoint); it recovers from its WAL at `start_again`.
    pub fn crash(&self) {
        self.command("crash", "crashed");
    }

    /// Starts the server again after `crash` and waits until it serves.
    pub fn start_again(&self) {
        self.command("start", "started");
        assert!(
            self.wait_ready(Duration::from_secs(60)),
            "postgres did not come back"
        );
    }

    /// The cluster's folder (data files, WAL, log) with everything written
    /// so far forced out of shared buffers into it, for the at-rest scans.
    pub fn files(&self) -> PathBuf {
        self.execute("CHECKPOINT");
        self.folder
            .clone()
            .expect("an external PostgreSQL's files cannot be scanned: run without TOKENVAULT_TEST_PG_URL")
    }
}
