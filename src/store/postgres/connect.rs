//! From `[store.postgres]` to a pool of connections: the URL's hosts, the
//! password file, rustls (ring provider) verifying the database's
//! certificate against the configured CA, an optional client certificate,
//! and the session settings every connection runs with.

use crate::config::PostgresSection;
use crate::pem;
use crate::store::StoreError;
use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

/// Makes every connection on the runtime the store was opened on. Without
/// this, a connection made while the vault's committer thread runs the
/// store on its own runtime would have its socket and its driving task on
/// that runtime, and any later user of the pooled connection would stall
/// whenever the committer is idle.
struct OnRuntime<T> {
    tls: T,
    runtime: tokio::runtime::Handle,
}

type Connected = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>;

async fn connect_here<T>(config: tokio_postgres::Config, tls: T) -> Connected
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %super::describe(&e), "PostgreSQL connection ended");
        }
    });
    Ok((client, task))
}

impl<T> Connect for OnRuntime<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + '_>> {
        let (config, tls) = (config.clone(), self.tls.clone());
        let made = self.runtime.spawn(connect_here(config.clone(), tls.clone()));
        Box::pin(async move {
            match made.await {
                Ok(connected) => connected,
                // The runtime is shutting down: connect where we are.
                Err(_) => connect_here(config, tls).await,
            }
        })
    }
}

fn refused(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {what}"))
}

/// The driver's configuration: the URL, plus what `[store.postgres]` adds.
fn driver_config(settings: &PostgresSection) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = settings
        .url
        .as_ref()
        .map(|url| url.0.clone())
        .ok_or_else(|| refused("store.postgres.url is not set"))?;
    if let Some(path) = &settings.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| refused(format_args!("password file {}: {e}", path.display())))?;
        config.password(text.trim_end_matches(['\r', '\n']));
    }
    let timeout = Duration::from_millis(settings.connect_timeout_ms);
    config.connect_timeout(timeout);
    // Every connection: COMMIT returns only once the commit is flushed
    // (durable), whatever the server's default; runaway statements end.
    config.options(format!(
        "-c synchronous_commit=on -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        settings.statement_timeout_ms,
        settings.statement_timeout_ms.saturating_mul(2),
    ));
    if config.get_application_name().is_none() {
        config.application_name("tokenvault");
    }
    config.ssl_mode(if settings.tls {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    Ok(config)
}

/// rustls with the ring provider; the server's certificate and host name
/// verified against `ca_cert` only (no built-in or system roots).
fn tls_config(settings: &PostgresSection) -> Result<rustls::ClientConfig, StoreError> {
    let ca = settings
        .ca_cert
        .as_deref()
        .ok_or_else(|| refused("store.postgres.ca_cert is required with tls = true"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem::certificates(ca).map_err(refused)? {
        roots
            .add(cert)
            .map_err(|e| refused(format_args!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_root_certificates(roots);
    match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                pem::certificates(cert).map_err(refused)?,
                pem::private_key(key).map_err(refused)?,
            )
            .map_err(refused),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The pool; no connection is made yet (`PgStore::connect` makes the first).
pub(super) fn pool(settings: &PostgresSection) -> Result<Pool, StoreError> {
    let config = driver_config(settings)?;
    let manager_config = ManagerConfig {
        // A connection is handed out again only if it is open; one left
        // inside a transaction never returns to the pool (`Session`).
        recycling_method: RecyclingMethod::Fast,
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| refused("the store must be opened inside the service's runtime"))?;
    let manager = if settings.tls {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(settings)?);
        Manager::from_connect(config, OnRuntime { tls, runtime }, manager_config)
    } else {
        let tls = tokio_postgres::NoTls;
        Manager::from_connect(config, OnRuntime { tls, runtime }, manager_config)
    };
    let timeout = Some(Duration::from_millis(settings.connect_timeout_ms));
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(refused)
}
