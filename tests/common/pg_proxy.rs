//! A TCP proxy in front of the test cluster that reads the PostgreSQL wire
//! protocol just enough to lose a COMMIT on purpose: it learns each
//! connection's backend pid (BackendKeyData), and when armed, at the next
//! simple-query `COMMIT` it either forwards it and swallows the answer, or
//! never forwards it; then it terminates that backend
//! (`pg_terminate_backend`) and closes the client's connection. The store
//! under test sees exactly what a crash between COMMIT and its answer
//! looks like; the database is real.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// COMMIT reaches the server and commits; its answer never comes back.
    LoseCommitAnswer,
    /// COMMIT never reaches the server; the transaction rolls back.
    DropCommit,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: u16,
    armed: Mutex<Option<Trap>>,
    fired: AtomicU32,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            armed: Mutex::new(None),
            fired: AtomicU32::new(0),
        });
        let accepting = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, Arc::clone(&accepting)));
            }
        });
        Proxy { port, shared }
    }

    /// The next COMMIT on any connection is lost as `trap` says.
    pub fn arm(&self, trap: Trap) {
        *self.shared.armed.lock().unwrap() = Some(trap);
    }

    /// How many COMMITs have been lost.
    pub fn fired(&self) -> u32 {
        self.shared.fired.load(Ordering::SeqCst)
    }
}

/// One protocol message: its type byte (none for the start-up packet) and
/// the bytes as they came, length included.
async fn frame(from: &mut (impl AsyncReadExt + Unpin), typed: bool) -> std::io::Result<(u8, Vec<u8>)> {
    let mut raw = Vec::new();
    let kind = if typed {
        let k = from.read_u8().await?;
        raw.push(k);
        k
    } else {
        0
    };
    let len = from.read_u32().await?;
    raw.extend_from_slice(&len.to_be_bytes());
    let mut body = vec![0; (len as usize).saturating_sub(4)];
    from.read_exact(&mut body).await?;
    raw.extend_from_slice(&body);
    Ok((kind, raw))
}

async fn relay(client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstream)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let pid = Arc::new(AtomicI32::new(0));
    let swallow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(Notify::new());
    let downstream = {
        let (pid, swallow, answered) = (Arc::clone(&pid), Arc::clone(&swallow), Arc::clone(&answered));
        tokio::spawn(async move {
            while let Ok((kind, raw)) = frame(&mut server_read, true).await {
                if kind == b'K' && raw.len() >= 9 {
                    pid.store(
                        i32::from_be_bytes([raw[5], raw[6], raw[7], raw[8]]),
                        Ordering::SeqCst,
                    );
                }
                if swallow.load(Ordering::SeqCst) {
                    if kind == b'Z' {
                        answered.notify_one();
                    }
                    continue;
                }
                if client_write.write_all(&raw).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut typed = false;
    while let Ok((kind, raw)) = frame(&mut client_read, typed).await {
        typed = true;
        let is_commit = kind == b'Q' && raw.get(5..11) == Some(b"COMMIT".as_slice());
        let trap = if is_commit {
            shared.armed.lock().unwrap().take()
        } else {
            None
        };
        if let Some(trap) = trap {
            if trap == Trap::LoseCommitAnswer {
                swallow.store(true, Ordering::SeqCst);
                let _ = server_write.write_all(&raw).await;
                // The commit is done once its ReadyForQuery comes back.
                let _ = tokio::time::timeout(Duration::from_secs(10), answered.notified()).await;
            }
            let backend = pid.load(Ordering::SeqCst);
            tokio::task::spawn_blocking(move || {
                super::postgres::cluster().execute(&format!("SELECT pg_terminate_backend({backend})"));
            })
            .await
            .unwrap();
            shared.fired.fetch_add(1, Ordering::SeqCst);
            downstream.abort();
            return;
        }
        if server_write.write_all(&raw).await.is_err() {
            break;
        }
    }
    downstream.abort();
}
