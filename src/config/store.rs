//! `[store]`: which backend holds the vault's records, and its settings.
//! `backend = "sled"` (the default) is the embedded database in the data
//! directory; `backend = "postgres"` is a PostgreSQL server, set in
//! `[store.postgres]`.

use super::{invalid, within, ConfigError};
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub backend: BackendKind,
    /// sled's page cache in MiB: the largest share of the service's memory
    /// on a big store. Default 1024 (sled's own default); 16 to 65536.
    pub cache_mib: u64,
    /// How long a background task's lease (and a node name's) lasts
    /// unrenewed: a node that dies hands its tasks over within this. The
    /// holder renews every third of it and stops a fifth before its end,
    /// the margin for clocks skewed between nodes. Default 15 s (3 to 600).
    pub lease_ttl_s: u64,
    pub postgres: PostgresSection,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    #[default]
    Sled,
    Postgres,
}

/// `[store.postgres]`: where the database is and how to reach it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSection {
    /// `postgres://user@host:port,host2:port/db?target_session_attrs=read-write`
    /// or the key=value form; several hosts are tried in order. Parsed when
    /// the file is read, so a malformed URL fails the start naming it.
    pub url: Option<PostgresUrl>,
    /// A file holding the database user's password (kept out of the URL
    /// and the config file). Optional: a client certificate may suffice.
    pub password_file: Option<PathBuf>,
    /// Connections in the pool. Default 16; 1 to 1024.
    pub pool_size: usize,
    /// The server cancels a statement running longer (`statement_timeout`).
    /// Default 5000; 100 to 600000.
    pub statement_timeout_ms: u64,
    /// How long to wait for a connection (TCP, TLS and start-up) or for a
    /// free one from the pool. Default 5000; 100 to 600000.
    pub connect_timeout_ms: u64,
    /// TLS to the database. Default true: rustls verifies the server's
    /// certificate and host name against `ca_cert`. False only for a
    /// database on the same host (loopback or a Unix socket).
    pub tls: bool,
    /// The CA that signed the database server's certificate (PEM).
    pub ca_cert: Option<PathBuf>,
    /// A client certificate and key (PEM) presented to the database, for
    /// `cert` authentication in pg_hba.conf.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            url: None,
            password_file: None,
            pool_size: 16,
            statement_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            tls: true,
            ca_cert: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// A parsed connection URL. Its `Debug` hides a password, as the driver's does.
#[derive(Clone, Debug)]
pub struct PostgresUrl(pub tokio_postgres::Config);

impl<'de> Deserialize<'de> for PostgresUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<tokio_postgres::Config>()
            .map(PostgresUrl)
            // The driver's message names the part at fault, never the password.
            .map_err(|e| serde::de::Error::custom(format!("store.postgres.url: {e}")))
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            backend: BackendKind::Sled,
            cache_mib: 1024,
            lease_ttl_s: 15,
            postgres: PostgresSection::default(),
        }
    }
}

impl StoreSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("store.cache_mib", self.cache_mib, 16..=65_536)?;
        within("store.lease_ttl_s", self.lease_ttl_s, 3..=600)?;
        if self.backend == BackendKind::Postgres {
            self.postgres.check()?;
        }
        Ok(())
    }

    /// The page cache in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mib * 1024 * 1024
    }

    pub(super) fn paths(&mut self) -> [&mut Option<PathBuf>; 4] {
        let pg = &mut self.postgres;
        [
            &mut pg.password_file,
            &mut pg.ca_cert,
            &mut pg.client_cert,
            &mut pg.client_key,
        ]
    }
}

impl PostgresSection {
    fn check(&self) -> Result<(), ConfigError> {
        let url = self.url.as_ref().ok_or_else(|| {
            invalid(
                "store.postgres.url",
                "is required with store.backend = \"postgres\"",
            )
        })?;
        if url.0.get_hosts().is_empty() {
            return Err(invalid("store.postgres.url", "names no host"));
        }
        if url.0.get_dbname().is_none() {
            return Err(invalid("store.postgres.url", "names no database"));
        }
        within("store.postgres.pool_size", self.pool_size, 1..=1024)?;
        within(
            "store.postgres.statement_timeout_ms",
            self.statement_timeout_ms,
            100..=600_000,
        )?;
        within(
            "store.postgres.connect_timeout_ms",
            self.connect_timeout_ms,
            100..=600_000,
        )?;
        if self.tls && self.ca_cert.is_none() {
            return Err(invalid(
                "store.postgres.ca_cert",
                "is required with store.postgres.tls = true (the database's certificate is verified against it; there are no built-in roots)",
            ));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(invalid(
                "store.postgres.client_cert",
                "and store.postgres.client_key go together",
            ));
        }
        if !self.tls && self.client_cert.is_some() {
            return Err(invalid(
                "store.postgres.client_cert",
                "needs store.postgres.tls = true",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_counted_in_bytes() {
        let section = |cache_mib| StoreSection {
            cache_mib,
            ..StoreSection::default()
        };
        assert!(section(15).check().is_err());
        assert!(section(65_537).check().is_err());
        assert!(section(16).check().is_ok());
        assert_eq!(section(128).cache_bytes(), 128 * 1024 * 1024);
        assert_eq!(StoreSection::default().cache_bytes(), 1024 * 1024 * 1024);
    }

    fn parse(text: &str) -> Result<StoreSection, String> {
        let section: StoreSection = toml::from_str(text).map_err(|e| e.to_string())?;
        section.check().map_err(|e| e.to_string())?;
        Ok(section)
    }

    #[test]
    fn postgres_needs_a_url_a_host_a_database_and_a_ca_for_tls() {
        let e = parse("backend = \"postgres\"").unwrap_err();
        assert!(e.contains("store.postgres.url") && e.contains("required"), "{e}");
        let e = parse("backend = \"postgres\"\n[postgres]\nurl = \"postgres://u@h/db\"").unwrap_err();
        assert!(e.contains("store.postgres.ca_cert"), "{e}");
        let e =
            parse("backend = \"postgres\"\n[postgres]\nurl = \"postgres://u@h\"\ntls = false").unwrap_err();
        assert!(e.contains("names no database"), "{e}");
        let e =
            parse("backend = \"postgres\"\n[postgres]\nurl = \"postgres://u@h:notaport/db\"").unwrap_err();
        assert!(e.contains("store.postgres.url"), "{e}");
        let e = parse("backend = \"mysql\"").unwrap_err();
        assert!(e.contains("mysql"), "{e}");
        let ok = parse(
            "backend = \"postgres\"\n[postgres]\nurl = \"postgres://u@a:5432,b:5433/db?target_session_attrs=read-write\"\ntls = false",
        )
        .unwrap();
        assert_eq!(ok.postgres.url.unwrap().0.get_hosts().len(), 2);
    }

    #[test]
    fn a_password_in_the_url_never_shows_in_debug_output() {
        let section = parse(
            "backend = \"postgres\"\n[postgres]\nurl = \"postgres://u:hunter2secret@h/db\"\ntls = false",
        )
        .unwrap();
        assert!(!format!("{section:?}").contains("hunter2secret"));
    }
}
