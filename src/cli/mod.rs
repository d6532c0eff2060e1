//! The `tokenvault` command line.

mod audit;
#[cfg(feature = "bank-sim")]
mod bank_sim;
mod check;
#[cfg(feature = "dev-pki")]
mod init;
mod keys;
mod reconcile;
mod remote;
mod serve;
mod shares;
mod store;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// tokenvault: a tokenization vault for card numbers and identity data,
/// served over mutual TLS.
///
/// Quick start (development): `tokenvault serve` creates a development PKI
/// and key-encrypting key in ./keys on first start and listens on
/// 127.0.0.1:8443; call it with the client certificates in ./keys.
#[derive(Parser, Debug)]
#[command(name = "tokenvault", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[cfg(feature = "dev-pki")]
    /// Write a development PKI into the keys folder: CA, server certificate
    /// for localhost/127.0.0.1, one client certificate per role (card-capture,
    /// orchestrator, auditor, key-admin, monitor, break-glass, reveal-approver, reconciler), the gateway's
    /// and sim-admin's client certificates, bank-sim's certificate, and a CRL.
    Init {
        #[arg(long, default_value = "keys")]
        keys_dir: PathBuf,
        /// Replace an existing development PKI.
        #[arg(long)]
        force: bool,
    },
    /// Run the service. Without --config: every default, paths relative to
    /// the working directory (data/, keys/, policies/). SIGHUP reloads
    /// certificates, CRL and policies; SIGTERM or Ctrl-C stops gracefully.
    Serve {
        /// TOML configuration file (see README "Configuration").
        #[arg(long)]
        config: Option<PathBuf>,
        /// `text` (default) or `json` (one object per line, with the
        /// request's id, method, route and caller on access lines).
        #[arg(long, value_enum, default_value_t)]
        log_format: serve::LogFormat,
    },
    /// Audit trail tools. They open the data directory directly, so run them
    /// while the service is stopped (use the /v1/audit API while it runs).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Key custody and lifecycle: make KEK shares (offline); unseal, rotate,
    /// rewrap, retire and status against a running service over mutual TLS
    /// (default: https://127.0.0.1:8443 as keys/key-admin.pem).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Reconcile a channel's daily statement (对账) against the vault's
    /// payments, on a running service over mutual TLS (default:
    /// https://127.0.0.1:8443 as keys/reconciler.pem): shows the run's
    /// progress on stderr, then prints each class's count and the
    /// statement's totals; exit 1 when anything is left open.
    Reconcile(reconcile::ReconcileArgs),
    #[cfg(feature = "dev-pki")]
    /// Certificates from the development CA.
    Pki {
        #[command(subcommand)]
        command: init::PkiCommand,
    },
    #[cfg(feature = "dev-pki")]
    /// Revoke a certificate of the development PKI: adds it to keys/crl.pem.
    /// The running service applies it on SIGHUP or POST /v1/admin/reload.
    Revoke {
        /// The certificate (PEM) to revoke.
        cert: PathBuf,
        #[arg(long, default_value = "keys")]
        keys_dir: PathBuf,
    },
    /// The PostgreSQL store (`[store] backend = "postgres"`).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    #[cfg(feature = "bank-sim")]
    /// Run the bank channel simulator: a separate mutual-TLS server playing
    /// a bank's quick-pay interface (four-element check, SMS code, signing)
    /// and an SMS carrier, with fault injection. Development and tests only.
    BankSim(bank_sim::BankSimArgs),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Validate a BIN table file (prefix,issuer,card_type per line).
    CheckBinTable { file: PathBuf },
    /// Validate a payment-token BIN range such as 810000-819999.
    CheckTokenRange { range: String },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute every chain; exit 1 naming the first broken or missing
    /// record. With --checkpoint, also every head that signed checkpoint
    /// names must still be in the trail as signed (finds a trail cut back
    /// with its heads rewound, which the chains alone cannot show).
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
        /// A signed checkpoint (anchor) file, as the service wrote it to
        /// `[audit] anchor_dir` or answered POST /v1/audit/anchors. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// An anchor public key (PEM) to check the checkpoints' signatures
        /// with, as pinned from `audit anchor-key`. Repeatable (one per key
        /// version, after `keys rotate-anchor`); each checkpoint must name
        /// one of them. Default: every version the vault holds.
        #[arg(long = "anchor-key", value_name = "PEM")]
        anchor_keys: Vec<PathBuf>,
    },
    /// Print the public key that signs checkpoints now (PEM), for auditors
    /// to pin; with --all, every version's, oldest first.
    AnchorKey {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        all: bool,
    },
    /// Write every record as JSON lines (to stdout, or --out FILE).
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Apply the schema migrations this build carries to the database in
    /// `[store.postgres]`, in one transaction (safe to run twice, or from
    /// two places at once). Nodes refuse to start on an older or newer
    /// schema than their own, naming both versions.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// What a command reports: printed, then the process exits with `code`.
pub(crate) struct Report {
    pub message: String,
    pub code: u8,
}

impl Report {
    fn ok(message: impl Into<String>) -> Self {
        Report {
            message: message.into(),
            code: 0,
        }
    }
}

/// Printing is this function's job: it is the command line's only output.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        #[cfg(feature = "dev-pki")]
        Command::Init { keys_dir, force } => init::run(&keys_dir, force),
        Command::Serve { config, log_format } => serve::run(config.as_deref(), log_format),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    checkpoints,
                    anchor_keys,
                },
        } => audit::verify(config.as_deref(), &checkpoints, &anchor_keys),
        Command::Audit {
            command: AuditCommand::AnchorKey { config, all },
        } => audit::anchor_key(config.as_deref(), all),
        Command::Audit {
            command: AuditCommand::Export { config, out },
        } => audit::export(config.as_deref(), out.as_deref()),
        Command::Keys { command } => keys::run(command),
        Command::Store {
            command: StoreCommand::Migrate { config },
        } => store::migrate(config.as_deref()),
        #[cfg(feature = "dev-pki")]
        Command::Revoke { cert, keys_dir } => init::revoke(&keys_dir, &cert),
        #[cfg(feature = "dev-pki")]
        Command::Pki { command } => init::pki(command),
        Command::Reconcile(args) => reconcile::run(args),
        #[cfg(feature = "bank-sim")]
        Command::BankSim(args) => bank_sim::run(args),
        Command::Openapi => openapi(),
        Command::CheckBinTable { file } => check::bin_table(&file).map(Report::ok),
        Command::CheckTokenRange { range } => check::token_range(&range).map(Report::ok),
    };
    match outcome {
        Ok(report) => {
            if !report.message.is_empty() {
                println!("{}", report.message);
            }
            ExitCode::from(report.code)
        }
        Err(message) => {
            eprintln!("tokenvault: {message}");
            ExitCode::from(2)
        }
    }
}

fn openapi() -> Result<Report, String> {
    crate::api::document()
        .to_pretty_json()
        .map(Report::ok)
        .map_err(|e| e.to_string())
}

/// The config file's settings, or every default relative to the working directory.
pub(crate) fn load_config(path: Option<&std::path::Path>) -> Result<crate::config::ServiceConfig, String> {
    match path {
        Some(p) => crate::config::ServiceConfig::load(p),
        None => {
            crate::config::ServiceConfig::defaults_in(&std::env::current_dir().map_err(|e| e.to_string())?)
        }
    }
    .map_err(|e| e.to_string())
}
