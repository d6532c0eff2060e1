//! `tokenvault serve`: start, announce the address, reload on SIGHUP, stop
//! gracefully on SIGTERM or Ctrl-C.

use super::Report;
use crate::audit::Actor;
use std::path::Path;
use tokio::signal::unix::{signal, SignalKind};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}

/// Logs to stderr in `format`, filtered by RUST_LOG (default `info`).
pub(super) fn init_logging(format: LogFormat) {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

pub(super) fn run(config_path: Option<&Path>, log_format: LogFormat) -> Result<Report, String> {
    init_logging(log_format);
    if let Err(e) = crate::server::forbid_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let config = super::load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let server = crate::server::start(&config).await.map_err(|e| e.to_string())?;
        // Handlers first: a SIGHUP right after the announcement must reload,
        // not end the process.
        let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        announce(server.addr);
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    let Some(app) = server.app() else {
                        // Sealed: no policies in use beyond unseal, no audit chain yet.
                        match crate::server::reload_tls_while_sealed(&server) {
                            Ok(()) => tracing::info!("sealed: TLS and CRL reloaded"),
                            Err(e) => tracing::error!(error = %e, "sealed: TLS reload failed; keeping the previous"),
                        }
                        continue;
                    };
                    // No record, no change: a reload the trail cannot
                    // record is not applied (fails closed).
                    if let Err(e) = app.reload_audited(&Actor::local("sighup")).await {
                        tracing::error!(error = %e, "SIGHUP: nothing reloaded; the previous configuration stays");
                    }
                }
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        tracing::info!("shutting down: no new connections, letting open ones finish");
        server.shutdown().await;
        Ok(Report::ok("tokenvault stopped"))
    })
}

/// The one line on stdout a supervisor (or a test) reads to find the port.
#[allow(clippy::print_stdout)]
fn announce(addr: std::net::SocketAddr) {
    println!("tokenvault listening on https://{addr}");
}
