//! Where the service is and who is calling, for the commands that talk to a
//! running service over mutual TLS (`keys`, `reconcile`), and how an
//! answer is shown.

use super::Report;
use crate::channel::client::{ChannelClient, ClientTls, Reply};
use crate::tls::layout::PkiLayout;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where the service is and who is calling.
#[derive(Args, Debug)]
pub(super) struct Remote {
    /// The service's base URL.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub(super) url: String,
    /// Development PKI folder the defaults below come from.
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// CA certificate (PEM). Default: <keys-dir>/ca.pem.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Your client certificate (PEM). Default: <keys-dir>/<role>.pem, the
    /// command's development role (key-admin for keys, reconciler for
    /// reconcile).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Your private key (PEM). Default: <keys-dir>/<role>.key.pem.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The Idempotency-Key of a changing call. Default: a fresh random
    /// one (printed on failure); pass the same one to retry a call whose
    /// answer was lost, and the service answers it without doing it twice.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// The development role whose certificate is the default.
    #[arg(skip = "key-admin")]
    role: &'static str,
}

impl Remote {
    /// The same caller, with `role`'s development certificate as default.
    pub(super) fn acting_as(mut self, role: &'static str) -> Remote {
        self.role = role;
        self
    }

    pub(super) fn client(&self) -> Result<ChannelClient, String> {
        let layout = PkiLayout::new(&self.keys_dir);
        let tls = ClientTls {
            ca_cert: self.ca.clone().unwrap_or_else(|| layout.ca_cert()),
            // The development CRL goes with the development CA only.
            crl: (self.ca.is_none() && layout.crl().exists()).then(|| layout.crl()),
            cert: self.cert.clone().unwrap_or_else(|| layout.client_cert(self.role)),
            key: self.key_path(),
        };
        ChannelClient::new(&self.url, &tls, Duration::from_secs(60)).map_err(|e| e.to_string())
    }

    /// The caller's private key: as given, or the development role's.
    pub(super) fn key_path(&self) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| PkiLayout::new(&self.keys_dir).client_key(self.role))
    }

    /// The same caller at the `n`th of several nodes. Remembered answers
    /// are shared by the nodes, so each node's call gets a key of its own.
    pub(super) fn at(&self, url: &str, n: usize, key: &str) -> Remote {
        Remote {
            url: url.to_owned(),
            keys_dir: self.keys_dir.clone(),
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            idempotency_key: Some(if n == 0 {
                key.to_owned()
            } else {
                format!("{key}-node{n}")
            }),
            role: self.role,
        }
    }

    /// The key for this call: as given, or 16 random bytes in hex.
    pub(super) fn idempotency_key(&self) -> Result<String, String> {
        match &self.idempotency_key {
            Some(key) => Ok(key.clone()),
            None => crate::domain::random::array::<16>()
                .map(|bytes| format!("cli-{}", crate::hex::encode(&bytes)))
                .map_err(|e| e.to_string()),
        }
    }

    /// POSTs a changing call with its Idempotency-Key; a failed call says
    /// which key to retry it with.
    pub(super) async fn mutate(&self, path: &str, body: Option<Vec<u8>>) -> Result<Reply, String> {
        let key = self.idempotency_key()?;
        self.client()?
            .post_idempotent(path, body, &key)
            .await
            .map_err(|e| format!("{e} (retry with --idempotency-key {key})"))
    }

    /// GETs a read.
    pub(super) async fn get(&self, path: &str) -> Result<Reply, String> {
        self.client()?.get(path).await.map_err(|e| e.to_string())
    }
}

/// A success body as it came; a problem as one line, exit 1.
pub(super) fn answer<E: std::fmt::Display>(reply: Result<Reply, E>) -> Result<Report, String> {
    let reply = reply.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    if (200..300).contains(&reply.status) {
        return Ok(Report::ok(text));
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let field = match (doc["field"].as_str(), doc["rule"].as_str()) {
        (Some(f), Some(r)) => format!(" [{f}: {r}]"),
        _ => String::new(),
    };
    Ok(Report {
        message: format!(
            "{} {}: {}{field}",
            reply.status,
            doc["title"].as_str().unwrap_or("error"),
            doc["detail"].as_str().unwrap_or(&text)
        ),
        code: 1,
    })
}
