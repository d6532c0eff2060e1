//! `tokenvault bank-sim`: run the bank channel simulator until SIGTERM.

use super::Report;
use crate::sim::{self, Faults, PayMode, SimConfig, VerifyMode};
use crate::tls::layout::{PkiLayout, BANK_SIM, TRUST_DOMAIN};
use crate::tls::TlsFiles;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

#[derive(clap::Args, Debug)]
pub(crate) struct BankSimArgs {
    /// Where the simulator listens (mutual TLS).
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// Development PKI folder: ca.pem, crl.pem and the simulator's own
    /// bank-sim.pem / bank-sim.key.pem (written by `tokenvault init`), and
    /// bank-sim-signing.seed, the key its notifications are signed with
    /// (made if missing, its public key beside it as
    /// bank-sim-signing.pub.pem: a channel's notify_public_key).
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// Cardholder CSV (card_no,name,id_no,phone,kind,cvn,expiry,balance_fen);
    /// default: the embedded sample in config/bank-sim-cardholders.csv.
    #[arg(long)]
    cardholders: Option<PathBuf>,
    /// What the bank checks when signing.
    #[arg(long, value_enum, default_value_t = VerifyMode::FourElements)]
    verify: VerifyMode,
    /// This bank sends no SMS code: the platform must send its own.
    #[arg(long)]
    no_sms: bool,
    /// Added latency per quick-pay call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of quick-pay calls answered with a 500 system error (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Start unavailable (every quick-pay call answers 503).
    #[arg(long)]
    unavailable: bool,
    /// How debits are answered: at once, "processing" then notified, or
    /// "user paying" (payment-code style) until closed.
    #[arg(long, value_enum, default_value_t = PayMode::Sync)]
    pay_mode: PayMode,
    /// Each payment notification is delivered this many times (1-20).
    #[arg(long, default_value_t = 1)]
    notify_repeats: u32,
    /// The bank's quick-pay limit per transaction, in fen.
    #[arg(long)]
    per_transaction_limit: Option<u64>,
    /// The bank's quick-pay limit per card per day, in fen.
    #[arg(long)]
    daily_limit: Option<u64>,
    /// Serve the SMS outbox at GET /sim/admin/sms (tests only).
    #[arg(long)]
    expose_sms: bool,
    /// The client identity allowed to call the bank (the vault's gateway).
    #[arg(long, default_value = "spiffe://tokenvault/gateway")]
    client_identity: String,
    /// The identity allowed to call /sim/admin/*.
    #[arg(long, default_value = "spiffe://tokenvault/sim-admin")]
    admin_identity: String,
    /// `text` (default) or `json`, as for `serve`.
    #[arg(long, value_enum, default_value_t)]
    log_format: super::serve::LogFormat,
}

pub(super) fn run(args: BankSimArgs) -> Result<Report, String> {
    super::serve::init_logging(args.log_format);
    let keys = PkiLayout::new(&args.keys_dir);
    let signing_key = keys.bank_sim_signing_key().map_err(|e| e.to_string())?;
    let config = SimConfig {
        listen: args.listen,
        tls: TlsFiles {
            ca_cert: keys.ca_cert(),
            server_cert: keys.client_cert(BANK_SIM),
            server_key: keys.client_key(BANK_SIM),
            crl: keys.crl(),
            allow_tls12: false,
        },
        cardholders: args.cardholders,
        faults: Faults {
            latency_ms: args.latency_ms,
            error_rate: args.error_rate,
            unavailable: args.unavailable,
            sends_sms: !args.no_sms,
            verify: args.verify,
            pay_mode: args.pay_mode,
            notify_repeats: args.notify_repeats,
            per_transaction_limit: args.per_transaction_limit,
            daily_limit: args.daily_limit,
            ..Faults::default()
        },
        expose_sms: args.expose_sms,
        client_identity: args.client_identity,
        admin_identity: args.admin_identity,
        signing_key,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let running = sim::start(config).await.map_err(|e| e.to_string())?;
        tracing::warn!(
            "bank-sim is a SIMULATOR holding test cardholder data in plaintext; never point production at it"
        );
        // Handlers first: a SIGHUP right after the announcement must reload,
        // not end the process.
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        announce(running.addr);
        loop {
            tokio::select! {
                _ = hangup.recv() => match running.reload_tls() {
                    Ok(()) => tracing::info!("bank-sim: certificates and CRL reloaded"),
                    Err(e) => tracing::error!(error = %e, "bank-sim: reload failed; keeping the previous"),
                },
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        running.stop().await;
        Ok(Report::ok(format!(
            "bank-sim ({TRUST_DOMAIN}/{BANK_SIM}) stopped"
        )))
    })
}

/// The one stdout line a test reads to find the port.
#[allow(clippy::print_stdout)]
fn announce(addr: SocketAddr) {
    println!("bank-sim listening on https://{addr}");
}
