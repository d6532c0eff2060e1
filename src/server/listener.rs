//! The mutual-TLS accept loop shared by the vault service and the bank
//! simulator: a cap on open connections, a handshake deadline, the caller's
//! identity fixed per connection, HTTP/1.1 and HTTP/2, graceful drain.

use super::admission::{Admission, Refused, Ticket};
use super::failed_handshakes::Cause;
use super::standing::Standing;
use crate::api::{Metrics, Peer};
use crate::tls::{Identity, IdentityError, ReloadableTls};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long connections get to finish their requests at shutdown.
const DRAIN: Duration = Duration::from_secs(10);
/// A client must send a request's headers within this (slow-client guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may live, and how it is kept alive.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Closed (gracefully) after this long with no request in flight, on
    /// HTTP/1.1 and HTTP/2 alike; also bounds an HTTP/2 connection that
    /// never completes a request's headers.
    pub idle: Duration,
    /// Closed (gracefully, then within `DRAIN`) at this age, so no
    /// connection outlives a rotation of certificates for long.
    pub max_age: Duration,
    /// A connection whose peer is revoked or no longer trusted after a
    /// reload takes no new request at once, and is closed within this.
    pub revoked_close: Duration,
    /// HTTP/2 PING interval, and how long a PING answer may take.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            idle: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            revoked_close: Duration::from_secs(2),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the service closed a connection (the metric's `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    Revoked,
    Idle,
    MaxAge,
    Shutdown,
}

impl Close {
    fn as_str(self) -> &'static str {
        match self {
            Close::Revoked => "revoked",
            Close::Idle => "idle",
            Close::MaxAge => "max_age",
            Close::Shutdown => "shutdown",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Authenticated connections at most.
    pub connections: usize,
    /// Connections still in the handshake at most (`admission`).
    pub handshakes: usize,
    /// Connections from one source address at most; 0 is no limit.
    pub per_source: usize,
    pub handshake: Duration,
    pub lifetimes: Lifetimes,
}

/// The router requests go to. Swapped once, when a sealed service is
/// unsealed; each request takes the router current at its arrival, so a
/// keep-alive connection opened while sealed is served by the full API after.
pub struct RouterSlot(std::sync::RwLock<axum::Router>);

impl RouterSlot {
    pub fn new(router: axum::Router) -> Self {
        RouterSlot(std::sync::RwLock::new(router))
    }

    pub fn current(&self) -> axum::Router {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, router: axum::Router) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = router;
    }
}

/// What one listener serves.
#[derive(Clone)]
pub struct Serving {
    pub router: Arc<RouterSlot>,
    pub tls: Arc<ReloadableTls>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Failed handshakes by source and cause, for the audit trail.
    pub failed_handshakes: Arc<super::failed_handshakes::FailedHandshakes>,
}

/// A running accept loop; `stop` drains it.
pub struct Listening {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

impl Listening {
    /// Stops accepting, lets open connections finish (up to 10 s), returns
    /// once the accept loop has ended.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
    }
}

pub fn spawn(listener: TcpListener, serving: Serving) -> std::io::Result<Listening> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let accept_loop = tokio::spawn(accept_loop(listener, serving, stopped));
    Ok(Listening {
        addr,
        stop,
        accept_loop,
    })
}

async fn accept_loop(listener: TcpListener, serving: Serving, mut stopped: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(serving.limits.connections));
    let admission = Admission::new(serving.limits.handshakes, serving.limits.per_source);
    loop {
        let (tcp, origin) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let ticket = match admission.admit(origin.ip()) {
            Ok((ticket, shed_one)) => {
                if shed_one {
                    serving.metrics.handshake_failed();
                    tracing::info!("handshake budget full: the oldest unfinished handshake was shed");
                }
                ticket
            }
            Err(Refused::PerSource | Refused::HandshakesBusy) => {
                serving.metrics.connection_refused();
                drop(tcp);
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(serving.tls.current());
        tokio::spawn(connection(
            serving.clone(),
            acceptor,
            tcp,
            origin,
            (ticket, Arc::clone(&slots)),
            stopped.clone(),
        ));
    }
    drop(listener);
    // Every slot back means every connection has ended.
    let all = u32::try_from(serving.limits.connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
}

async fn connection(
    serving: Serving,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    origin: SocketAddr,
    (mut ticket, slots): (Ticket, Arc<Semaphore>),
    mut stopped: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let failed_handshakes = Arc::clone(&serving.failed_handshakes);
    let metrics = serving.metrics;
    let mut handshake = Box::pin(acceptor.accept(tcp));
    let failure = tokio::select! {
        outcome = tokio::time::timeout(serving.limits.handshake, &mut handshake) => match outcome {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err((Cause::of(&e), e.to_string())),
            Err(_) => Err((Cause::TimedOut, "timed out".to_owned())),
        },
        _ = &mut ticket.shed => Err((Cause::Shed, "shed: the handshake budget was full and this was the oldest".to_owned())),
    };
    // Authenticated (or not): out of the handshake budget either way, and
    // into the connection cap if there is room.
    ticket.authenticated();
    let slot: Option<OwnedSemaphorePermit> = match &failure {
        Ok(_) => Arc::clone(&slots).try_acquire_owned().ok(),
        Err(_) => None,
    };
    if failure.is_ok() && slot.is_none() {
        metrics.connection_refused();
        return;
    }
    let tls = match failure {
        Ok(tls) => tls,
        Err((cause, reason)) => {
            metrics.handshake_failed();
            failed_handshakes.record(origin.ip(), cause, crate::domain::time::now_ms());
            tracing::info!(%origin, %reason, "TLS handshake failed");
            // The place is free before the socket closes, so a client that
            // sees the close and reconnects at once finds it free.
            drop(ticket);
            drop(handshake);
            return;
        }
    };
    let chain: Vec<_> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let identity = chain.first().map_or(Err(IdentityError::NoIdentity), |cert| {
        Identity::from_certificate(cert.as_ref())
    });
    if let Err(e) = &identity {
        tracing::warn!(%origin, error = %e, "client certificate verified but carries no usable identity");
    }
    if let Some(left_s) = chain
        .first()
        .and_then(|cert| metrics.client_certificate(cert.as_ref()))
    {
        let who = identity
            .as_ref()
            .map_or_else(|_| "unidentified".to_owned(), ToString::to_string);
        tracing::warn!(identity = %who, days_left = left_s / 86_400, "client certificate near its end: issue its successor (tokenvault pki issue) and deploy it");
    }
    // Subscribed before the first check, so no reload slips between them.
    let mut reloads = serving.tls.generations();
    let generation = *reloads.borrow_and_update();
    let standing = Arc::new(Standing::new(Arc::clone(&serving.tls), chain, generation));
    let peer = Peer { identity, origin };
    let router = serving.router;
    let requests = Arc::clone(&standing);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(peer.clone());
        let router = router.current();
        let standing = Arc::clone(&requests);
        async move {
            // Checked per request: once a reload has returned, a revoked
            // peer is served nothing more, whatever its connection does.
            if !standing.trusted() {
                return Ok(revoked_answer());
            }
            let _in_flight = standing.begin();
            router.oneshot(request).await
        }
    });
    metrics.connection_opened();
    let lifetimes = serving.limits.lifetimes;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(lifetimes.keepalive_interval)
        .keep_alive_timeout(lifetimes.keepalive_timeout);
    let serving = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(serving);
    let closing = why_close(&standing, &mut reloads, &mut stopped, lifetimes);
    tokio::select! {
        result = serving.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%origin, error = %e, "connection ended with an error");
            }
        }
        why = closing => {
            // HTTP/2 GOAWAY, or no keep-alive after the current HTTP/1.1
            // request; then closed hard at the bound.
            serving.as_mut().graceful_shutdown();
            let bound = match why {
                Close::Revoked => lifetimes.revoked_close,
                _ => DRAIN,
            };
            if why != Close::Shutdown {
                metrics.connection_closed_by_service(why.as_str());
            }
            if matches!(why, Close::Revoked) {
                tracing::warn!(%origin, "closing a connection whose client certificate is revoked or no longer trusted");
            }
            let _ = tokio::time::timeout(bound, serving.as_mut()).await;
        }
    }
    metrics.connection_closed();
    drop(slot);
    drop(ticket);
}

/// Resolves when the service should close this connection, and why.
async fn why_close(
    standing: &Standing,
    reloads: &mut watch::Receiver<u64>,
    stopped: &mut watch::Receiver<bool>,
    lifetimes: Lifetimes,
) -> Close {
    let born = tokio::time::Instant::now();
    let mut idle_check = tokio::time::interval(
        lifetimes
            .idle
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(50)),
    );
    let mut reloads_open = true;
    loop {
        tokio::select! {
            changed = reloads.changed(), if reloads_open => {
                if changed.is_err() {
                    reloads_open = false;
                } else if !standing.trusted() {
                    return Close::Revoked;
                }
            }
            _ = stopped.changed() => return Close::Shutdown,
            _ = tokio::time::sleep_until(born + lifetimes.max_age) => return Close::MaxAge,
            _ = idle_check.tick() => {
                if standing.idle_for() >= lifetimes.idle {
                    return Close::Idle;
                }
            }
        }
    }
}

/// The answer to a request on a connection whose peer was revoked after
/// it connected. The connection is closing.
fn revoked_answer() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = crate::api::problem::Problem::new(
        axum::http::StatusCode::FORBIDDEN,
        "certificate-revoked",
        "Certificate revoked",
        "this connection's client certificate is revoked or no longer trusted",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}
