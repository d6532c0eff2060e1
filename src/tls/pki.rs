//! The development PKI `tokenvault init` writes: a CA, a server certificate
//! for localhost and 127.0.0.1, one client certificate per role (URI SAN
//! `spiffe://tokenvault/<role>`), and a CRL. ECDSA P-256, signed with ring.
//! The CA key stays in the folder so a developer can revoke and re-issue;
//! production uses the platform's own CA and never this.

use crate::domain::time::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use std::path::{Path, PathBuf};

pub use super::layout::{PkiLayout, BANK_SIM, ROLES, SERVICE_CLIENTS, TRUST_DOMAIN};

const DAY: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("{0} already exists; pass --force to overwrite the development PKI")]
    Exists(PathBuf),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("bank-sim's notification signing key: {0}")]
    SigningKey(#[from] super::layout::SigningKeyError),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }
}

/// Where each file of a development PKI lives inside its folder.
/// Validity of an issued certificate, as Unix seconds.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// From an hour ago (clock skew) for `days` days.
    pub fn days_from_now(days: i64) -> Self {
        let now = Timestamp::now().seconds();
        Validity {
            not_before: now - 3600,
            not_after: now + days * DAY,
        }
    }
}

fn when(secs: i64) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| PkiError::Generate(e.to_string()))
}

fn serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = crate::domain::random::array::<16>().map_err(|e| PkiError::Generate(e.to_string()))?;
    bytes[0] &= 0x7f; // a positive INTEGER
    Ok(SerialNumber::from_slice(&bytes))
}

/// Whole or not at all, so a reader (a reload, a bank simulator
/// starting) sees the old file or the new one, never half.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mode = if private { 0o600 } else { 0o644 };
    crate::atomic_file::write(path, contents.as_bytes(), mode).map_err(|e| PkiError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| PkiError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn ca_params(validity: Validity) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "tokenvault development CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tokenvault (development only)");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = when(validity.not_before)?;
    params.not_after = when(validity.not_after)?;
    params.serial_number = Some(serial()?);
    Ok(params)
}

/// The CA of an existing development PKI, able to sign.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    pub fn load(layout: &PkiLayout) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(&read(&layout.ca_key())?)?;
        let issuer = Issuer::from_ca_cert_pem(&read(&layout.ca_cert())?, key)?;
        Ok(DevCa { issuer })
    }

    /// Issues a client certificate with `spiffe_uri` (if given) as its only
    /// URI SAN and `common_name` as subject CN; returns (cert PEM, key PEM).
    pub fn issue_client(
        &self,
        spiffe_uri: Option<&str>,
        common_name: &str,
        validity: Validity,
    ) -> Result<(String, String), PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        if let Some(uri) = spiffe_uri {
            params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        }
        self.issue_leaf(
            params,
            common_name,
            &[ExtendedKeyUsagePurpose::ClientAuth],
            validity,
        )
    }

    fn issue_server(&self, validity: Validity) -> Result<(String, String), PkiError> {
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        self.issue_leaf(
            params,
            "tokenvault server (development)",
            &[ExtendedKeyUsagePurpose::ServerAuth],
            validity,
        )
    }

    /// The bank simulator's certificate: a server name for its listener and
    /// a SPIFFE identity for the calls it makes to the vault.
    fn issue_bank_sim(&self, validity: Validity) -> Result<(String, String), PkiError> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        let uri = format!("spiffe://{TRUST_DOMAIN}/{BANK_SIM}");
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
        self.issue_leaf(
            params,
            BANK_SIM,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            validity,
        )
    }

    /// Signs an end-entity certificate with a fresh P-256 key.
    fn issue_leaf(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        usages: &[ExtendedKeyUsagePurpose],
        validity: Validity,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages.to_vec();
        params.not_before = when(validity.not_before)?;
        params.not_after = when(validity.not_after)?;
        params.serial_number = Some(serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A CRL revoking `serials`, valid for 30 days.
    pub fn crl(&self, serials: &[Vec<u8>]) -> Result<String, PkiError> {
        self.crl_until(serials, Timestamp::now().seconds() + 30 * DAY)
    }

    /// A CRL revoking `serials` whose `nextUpdate` is `next_update` (Unix
    /// seconds); tests make expired ones with it.
    pub fn crl_until(&self, serials: &[Vec<u8>], next_update: i64) -> Result<String, PkiError> {
        let now = Timestamp::now().seconds().min(next_update);
        let revoked = serials
            .iter()
            .map(|s| -> Result<RevokedCertParams, PkiError> {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: when(now - 60)?,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let params = CertificateRevocationListParams {
            this_update: when(now - 60)?,
            next_update: when(next_update)?,
            crl_number: serial()?,
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// Writes a complete development PKI into `layout.dir`. Refuses to replace
/// any existing file unless `force`.
pub fn init(layout: &PkiLayout, force: bool) -> Result<(), PkiError> {
    std::fs::create_dir_all(&layout.dir).map_err(|e| PkiError::Write {
        path: layout.dir.clone(),
        reason: e.to_string(),
    })?;
    if !force {
        if let Some(existing) = layout.all_files().into_iter().find(|f| f.exists()) {
            return Err(PkiError::Exists(existing));
        }
    }
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params(Validity::days_from_now(5 * 365))?.self_signed(&ca_key)?;
    write(&layout.ca_cert(), &ca_cert.pem(), false)?;
    write(&layout.ca_key(), &ca_key.serialize_pem(), true)?;
    let ca = DevCa::load(layout)?;
    let (cert, key) = ca.issue_server(Validity::days_from_now(365))?;
    write(&layout.server_cert(), &cert, false)?;
    write(&layout.server_key(), &key, true)?;
    for name in ROLES.into_iter().chain(SERVICE_CLIENTS) {
        let uri = format!("spiffe://{TRUST_DOMAIN}/{name}");
        let (cert, key) = ca.issue_client(Some(&uri), name, Validity::days_from_now(365))?;
        write(&layout.client_cert(name), &cert, false)?;
        write(&layout.client_key(name), &key, true)?;
    }
    let (cert, key) = ca.issue_bank_sim(Validity::days_from_now(365))?;
    write(&layout.client_cert(BANK_SIM), &cert, false)?;
    write(&layout.client_key(BANK_SIM), &key, true)?;
    write(&layout.crl(), &ca.crl(&[])?, false)?;
    // bank-sim signs its notifications; channels pin its public key.
    layout.bank_sim_signing_key()?;
    Ok(())
}

/// Re-signs the development CRL with the same revoked serials and a fresh
/// 30-day `nextUpdate`, so a development checkout keeps working past the
/// first CRL's expiry (`serve` does this at start).
pub fn refresh_crl(layout: &PkiLayout) -> Result<(), PkiError> {
    // A folder made before notifications were signed gets its key here.
    layout.bank_sim_signing_key()?;
    let ca = DevCa::load(layout)?;
    let serials = revoked_serials(&layout.crl())?;
    write(&layout.crl(), &ca.crl(&serials)?, false)
}

/// Adds the certificate at `cert_path` to the CRL and re-signs it. The
/// running service picks it up on reload (SIGHUP or the admin call).
pub fn revoke(layout: &PkiLayout, cert_path: &Path) -> Result<(), PkiError> {
    let ca = DevCa::load(layout)?;
    let mut serials = revoked_serials(&layout.crl())?;
    let serial = certificate_serial(cert_path)?;
    if !serials.contains(&serial) {
        serials.push(serial);
    }
    write(&layout.crl(), &ca.crl(&serials)?, false)
}

fn certificate_serial(path: &Path) -> Result<Vec<u8>, PkiError> {
    let bad = |reason: String| PkiError::Read {
        path: path.to_owned(),
        reason,
    };
    let der = crate::pem::certificates(path).map_err(|e| bad(e.to_string()))?;
    let first = der.first().ok_or_else(|| bad("no certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref()).map_err(|e| bad(e.to_string()))?;
    Ok(cert.raw_serial().to_vec())
}

fn revoked_serials(crl_path: &Path) -> Result<Vec<Vec<u8>>, PkiError> {
    let bad = |reason: String| PkiError::Read {
        path: crl_path.to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for der in crate::pem::crls(crl_path).map_err(|e| bad(e.to_string()))? {
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| bad(e.to_string()))?;
        out.extend(crl.iter_revoked_certificates().map(|r| r.raw_serial().to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::identity::Identity;

    #[test]
    fn init_writes_a_pki_whose_identities_parse_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        init(&layout, false).unwrap();
        assert!(layout.is_complete());
        for role in ROLES.into_iter().chain(SERVICE_CLIENTS).chain([BANK_SIM]) {
            let der = crate::pem::certificates(&layout.client_cert(role)).unwrap();
            assert_eq!(
                Identity::from_certificate(der[0].as_ref()).unwrap().to_string(),
                format!("spiffe://tokenvault/{role}")
            );
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(layout.client_key(role)).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(init(&layout, false), Err(PkiError::Exists(_))));
        init(&layout, true).unwrap();
        assert!(revoked_serials(&layout.crl()).unwrap().is_empty());
        revoke(&layout, &layout.client_cert("monitor")).unwrap();
        assert_eq!(
            revoked_serials(&layout.crl()).unwrap(),
            vec![certificate_serial(&layout.client_cert("monitor")).unwrap()]
        );
    }
}
