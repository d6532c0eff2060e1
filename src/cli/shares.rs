//! KEK share files for the key ceremony: `keys init-shares` writes one per
//! custodian, sealed to the custodian's certificate key (or, for
//! development only, in the clear); `keys unseal` and `keys rotate-kek`
//! open a sealed one with the caller's own private key before it is sent.

use super::Report;
use crate::tls::identity::Identity;
use crate::vault::keys::sealed_share::{SealedShareFile, SEALED_FORMAT};
use crate::vault::keys::shares::{split_new_kek, ShareFile};
use rustls::pki_types::PrivateKeyDer;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Who receives the shares of a new KEK.
pub(super) enum Recipients {
    /// Each share sealed to one custodian's certificate, in order.
    Custodians(Vec<PathBuf>),
    /// `n` shares in the clear: whoever runs the command holds them all.
    Plaintext(u8),
}

/// A custodian as their certificate names them: identity and public key.
struct Custodian {
    identity: String,
    spki_der: Vec<u8>,
}

fn custodian(path: &Path) -> Result<Custodian, String> {
    let certs = crate::pem::certificates(path).map_err(|e| e.to_string())?;
    let der = certs
        .first()
        .ok_or_else(|| format!("{}: no certificate", path.display()))?;
    let identity = Identity::from_certificate(der)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_string();
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("{}: not a certificate: {e}", path.display()))?;
    Ok(Custodian {
        identity,
        spki_der: cert.public_key().raw.to_vec(),
    })
}

/// Makes a new KEK and writes its shares to `out` (mode 0600, never over
/// an existing file). The KEK itself is never written.
pub(super) fn init_shares(threshold: u8, recipients: Recipients, out: &Path) -> Result<Report, String> {
    let custodians = match &recipients {
        Recipients::Custodians(paths) => paths
            .iter()
            .map(|p| custodian(p))
            .collect::<Result<Vec<_>, _>>()?,
        Recipients::Plaintext(_) => Vec::new(),
    };
    for (i, c) in custodians.iter().enumerate() {
        if custodians[..i].iter().any(|other| other.identity == c.identity) {
            return Err(format!(
                "{} is named twice: each custodian holds one share",
                c.identity
            ));
        }
    }
    let count = match recipients {
        Recipients::Custodians(_) => u8::try_from(custodians.len()).map_err(|_| "at most 16 custodians")?,
        Recipients::Plaintext(n) => n,
    };
    let (_kek, files) = split_new_kek(threshold, count).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut written = Vec::new();
    for (file, custodian) in files
        .into_iter()
        .zip(custodians.iter().map(Some).chain(std::iter::repeat(None)))
    {
        let (name, json) = match custodian {
            Some(c) => {
                let mut owned = file;
                owned.custodian = Some(c.identity.clone());
                let sealed = SealedShareFile::seal(&owned, &c.spki_der).map_err(|e| e.to_string())?;
                (
                    format!("share-{}-of-{count}.sealed.json", owned.index),
                    Zeroizing::new(serde_json::to_vec_pretty(&sealed).map_err(|e| e.to_string())?),
                )
            }
            None => (
                format!("share-{}-of-{count}.json", file.index),
                Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?),
            ),
        };
        let path = out.join(name);
        write_new(&path, &json)?;
        written.push(match custodian {
            Some(c) => format!("{} (for {})", path.display(), c.identity),
            None => path.display().to_string(),
        });
    }
    let advice = if custodians.is_empty() {
        "PLAINTEXT shares (development only: whoever ran this holds every share); give each file to a different custodian and delete it here"
    } else {
        "each share is sealed to its custodian's certificate key and opens only with their private key (`keys unseal --share FILE --cert ... --key ...`)"
    };
    Ok(Report::ok(format!(
        "{threshold}-of-{count} share set; {advice}:\n  {}",
        written.join("\n  ")
    )))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut handle = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {} (never overwritten): {e}", path.display()))?;
    handle
        .write_all(bytes)
        .and_then(|()| handle.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The share file to submit, as JSON: a sealed one opened with the private
/// key at `key` (the caller's own, the one their certificate was issued
/// for), a plaintext one as it is.
pub(super) fn share_to_submit(path: &Path, key: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw = Zeroizing::new(
        std::fs::read(path).map_err(|e| format!("cannot read share file {}: {e}", path.display()))?,
    );
    let format = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|doc| doc["format"].as_str().map(str::to_owned));
    if format.as_deref() != Some(SEALED_FORMAT) {
        return Ok(raw);
    }
    let sealed: SealedShareFile =
        serde_json::from_slice(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
    let private = crate::pem::private_key(key).map_err(|e| e.to_string())?;
    let PrivateKeyDer::Pkcs8(pkcs8) = private else {
        return Err(format!(
            "{}: a sealed share opens with a PKCS#8 key (BEGIN PRIVATE KEY)",
            key.display()
        ));
    };
    let share: ShareFile = sealed
        .open(pkcs8.secret_pkcs8_der())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Zeroizing::new(
        serde_json::to_vec(&share).map_err(|e| e.to_string())?,
    ))
}
