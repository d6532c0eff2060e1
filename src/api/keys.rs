//! Key administration on an open vault: status, data-key rotation, rewrap,
//! retirement, and KEK rotation from a new share set. (Unsealing itself is
//! served by the sealed router, `server::sealed`.)

use super::dto::{
    CustodyView, DataKeyView, FingerprintVersionView, KeyStatusResponse, KeyVersionResponse, PepperView,
    RewrapView, SealStatus,
};
use super::idempotency::Answer;
use super::mutation::{Input, JsonBody, Mutate, Mutation, NoBody, Remembering};
use super::path_id::NoPath;
use super::problem::Problem;
use super::{App, Caller};
use crate::audit::Outcome;
use crate::config::KekCustody;
use crate::domain::operation::Operation;
use crate::domain::time::Timestamp;
use crate::vault::keys::custody::{Accept, CollectError, Progress, ShareCollector};
use crate::vault::keys::kek::Kek;
use crate::vault::keys::shares::ShareFile;
use crate::vault::{KeyReport, RewrapProgress, VaultError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

fn rewrap_view(p: RewrapProgress) -> RewrapView {
    RewrapView {
        state: if p.finished_at.is_some() {
            "finished"
        } else {
            "running"
        }
        .to_owned(),
        started_at: p.started_at.seconds(),
        started_by: p.started_by,
        scanned: p.scanned,
        rewrapped: p.rewrapped,
        total: p.total,
        finished_at: p.finished_at.map(Timestamp::seconds),
    }
}

fn report_view(app: &App, report: KeyReport) -> KeyStatusResponse {
    let now = Timestamp::now().seconds();
    KeyStatusResponse {
        custody: match app.custody {
            KekCustody::DevFile => "dev-file",
            KekCustody::Shares => "shares",
        }
        .to_owned(),
        kek_version: report.kek_version,
        audit_key_version: report.audit_key_version,
        pepper_version: report.pepper_version,
        passwords_per_pepper: report
            .passwords_per_pepper
            .iter()
            .map(|(version, passwords)| PepperView {
                version: *version,
                passwords: *passwords,
            })
            .collect(),
        fingerprint_version: report.fingerprint_version,
        fingerprint_floor: report.fingerprint_floor,
        cards_per_fingerprint: report
            .cards_per_fingerprint
            .iter()
            .map(|(version, cards)| FingerprintVersionView {
                version: *version,
                cards: *cards,
            })
            .collect(),
        share_set: report.custody.map(|m| CustodyView {
            set_id: m.set_id,
            threshold: m.threshold,
            shares: m.shares,
        }),
        cryptoperiod_s: report.cryptoperiod_s,
        data_keys: report
            .data_keys
            .into_iter()
            .map(|k| DataKeyView {
                version: k.version,
                state: k.state.as_str().to_owned(),
                created_at: k.created_at.seconds(),
                retired_at: k.retired_at.map(Timestamp::seconds),
                age_s: now - k.created_at.seconds(),
                encryptions: k.encryptions,
                encryption_budget: k.encryption_budget,
                records: k.records,
                kek_version: k.kek_version,
            })
            .collect(),
        rewrap: report.rewrap.map(rewrap_view),
    }
}

/// Key versions, records and encryptions per version, budgets, ages against
/// the cryptoperiod, and rewrap progress. Counting records scans the store.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", responses((status = 200, body = KeyStatusResponse), (status = 403, body = Problem)))]
pub async fn status(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<KeyStatusResponse>, Problem> {
    app.authorize(&caller, Operation::KeyStatus, None).await?;
    let report = app.vault.key_report().await?;
    Ok(Json(report_view(&app, report)))
}

/// A key rotation: the data key, the audit key, the pepper or the PAN
/// fingerprint key gets a new version (`WHICH`); the answer is that
/// version, now current.
pub(super) struct RotateKey<const WHICH: u8>;

const DATA_KEY: u8 = 0;
const AUDIT_KEY: u8 = 1;
const PEPPER: u8 = 2;
const FINGERPRINT: u8 = 3;
const ANCHOR: u8 = 4;

impl<const WHICH: u8> Mutation for RotateKey<WHICH> {
    const OPERATION: Operation = match WHICH {
        DATA_KEY => Operation::KeyRotate,
        AUDIT_KEY => Operation::KeyRotateAudit,
        PEPPER => Operation::KeyRotatePepper,
        FINGERPRINT => Operation::KeyRotateFingerprint,
        _ => Operation::KeyRotateAnchor,
    };
    type Path = NoPath;
    type Body = NoBody;
    type Done = u32;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<u32, Problem> {
        let (vault, actor) = (&input.app.vault, &input.caller.actor);
        let version = match WHICH {
            DATA_KEY => vault.rotate_data_key(actor, "requested").await,
            AUDIT_KEY => vault.rotate_audit_key(actor).await,
            PEPPER => vault.rotate_pepper(actor).await,
            FINGERPRINT => vault.rotate_fingerprint_key(actor).await,
            _ => vault.rotate_anchor_key(actor).await,
        };
        Ok(version?)
    }

    fn answer(version: &u32) -> Result<Answer, Problem> {
        Answer::json(
            StatusCode::CREATED,
            &KeyVersionResponse {
                version: *version,
                state: "current".to_owned(),
            },
        )
    }
}

/// Adds a data-key version; all new writes use it at once. Old versions
/// keep opening their records until rewrapped and retired.
#[utoipa::path(post, path = "/v1/admin/keys/rotate", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = KeyVersionResponse), (status = 403, body = Problem)))]
pub(super) async fn rotate(request: Mutate<RotateKey<DATA_KEY>>) -> Result<Response, Problem> {
    request.run().await
}

/// Adds an audit key version; this node's chain moves to it at the rotation's own record (the first MACed with it), every other node's within `audit.checkpoint_interval_s`. Older versions are kept to verify the records written under them; `audit verify` follows each chain's version record by record and refuses a record MACed with a version its chain had left.
#[utoipa::path(post, path = "/v1/admin/keys/audit/rotate", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = KeyVersionResponse), (status = 403, body = Problem)))]
pub(super) async fn rotate_audit(request: Mutate<RotateKey<AUDIT_KEY>>) -> Result<Response, Problem> {
    request.run().await
}

/// Adds a pepper version for payment-password hashes: new passwords are hashed with it at once, and each stored password moves to it at its next successful check (the hash names its version as its PHC `keyid`). `GET /v1/admin/keys` shows how many passwords each version still holds.
#[utoipa::path(post, path = "/v1/admin/keys/pepper/rotate", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = KeyVersionResponse), (status = 403, body = Problem)))]
pub(super) async fn rotate_pepper(request: Mutate<RotateKey<PEPPER>>) -> Result<Response, Problem> {
    request.run().await
}

/// Adds a PAN fingerprint key version: new cards are indexed under it at once, `keys rewrap` moves every stored card's index entry to it, and meanwhile a PAN is looked up under every version still in use, so a duplicate is found whichever version indexed it. `GET /v1/admin/keys` counts the cards per version. Request digests (idempotency, one-time codes) keep a key of their own and are not affected.
#[utoipa::path(post, path = "/v1/admin/keys/fingerprint/rotate", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = KeyVersionResponse), (status = 403, body = Problem)))]
pub(super) async fn rotate_fingerprint(request: Mutate<RotateKey<FINGERPRINT>>) -> Result<Response, Problem> {
    request.run().await
}

/// Adds a signing key version for audit anchors: anchors are signed with it from now on (other nodes take it up at their next anchor). Anchors signed before keep verifying against the public key they name, which auditors pin with `tokenvault audit anchor-key --all`; the rotation's audit record names the new public key.
#[utoipa::path(post, path = "/v1/admin/keys/anchor/rotate", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = KeyVersionResponse), (status = 403, body = Problem)))]
pub(super) async fn rotate_anchor(request: Mutate<RotateKey<ANCHOR>>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct StartRewrap;

impl Mutation for StartRewrap {
    const OPERATION: Operation = Operation::KeyRewrap;
    type Path = NoPath;
    type Body = NoBody;
    type Done = RewrapProgress;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<RewrapProgress, Problem> {
        Ok(input.app.vault.start_rewrap(&input.caller.actor).await?)
    }

    fn answer(progress: &RewrapProgress) -> Result<Answer, Problem> {
        Answer::json(StatusCode::ACCEPTED, &rewrap_view(progress.clone()))
    }
}

/// Starts re-encrypting every record under the newest version, in the
/// background at `keys.rewrap_records_per_s`; resumes after a restart.
/// Starting while a job runs returns that job. A retry with the same
/// Idempotency-Key answers the progress as it was when it started.
#[utoipa::path(post, path = "/v1/admin/keys/rewrap", tag = "keys",
    params(("Idempotency-Key" = String, Header)),
    responses((status = 202, body = RewrapView), (status = 403, body = Problem)))]
pub(super) async fn rewrap(request: Mutate<StartRewrap>) -> Result<Response, Problem> {
    request.run().await
}

pub(super) struct RetireDataKey;

impl Mutation for RetireDataKey {
    const OPERATION: Operation = Operation::KeyRetire;
    type Path = u32;
    type Body = NoBody;
    type Done = u32;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<u32, Problem> {
        input
            .app
            .vault
            .retire_data_key(&input.caller.actor, input.path)
            .await?;
        Ok(input.path)
    }

    fn answer(version: &u32) -> Result<Answer, Problem> {
        Answer::json(
            StatusCode::OK,
            &KeyVersionResponse {
                version: *version,
                state: "retired".to_owned(),
            },
        )
    }
}

/// Retires a version: refused (409) while it is current or any record uses
/// it. Its key is erased, so it can never seal again.
#[utoipa::path(post, path = "/v1/admin/keys/{version}/retire", tag = "keys",
    params(("version" = u32, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = KeyVersionResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn retire(request: Mutate<RetireDataKey>) -> Result<Response, Problem> {
    request.run().await
}

/// Seal status: always unsealed here (the sealed service answers it too).
#[utoipa::path(get, path = "/v1/admin/seal", tag = "keys", responses((status = 200, body = SealStatus), (status = 403, body = Problem)))]
pub async fn seal_status(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<SealStatus>, Problem> {
    app.authorize(&caller, Operation::KeyUnseal, None).await?;
    Ok(Json(SealStatus {
        sealed: false,
        shares_submitted: 0,
        threshold: None,
        custodians: Vec::new(),
    }))
}

/// A custodian submits a KEK share (the share file's JSON). While sealed:
/// `202` until enough distinct shares from distinct identities arrived, then
/// `200` and the vault opens; past the submission limits per identity and
/// per node, `429`. Once open: `409 already-unsealed`. The one
/// admin mutation without an Idempotency-Key: the vault's MAC key is still
/// sealed, and a share is counted once by its digest, so a retry is safe.
#[utoipa::path(post, path = "/v1/admin/unseal", tag = "keys", request_body(content = Object, content_type = "application/json", description = "a share file as `tokenvault keys init-shares` wrote it (a sealed one opened with the custodian's key first, as `keys unseal` does)"), responses((status = 200, body = SealStatus), (status = 202, body = SealStatus), (status = 409, body = Problem), (status = 422, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem, description = "while sealed: the share submission limit per identity or per node (`Retry-After`)")))]
pub async fn unseal(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, Problem> {
    app.authorize(&caller, Operation::KeyUnseal, None).await?;
    Err(Problem::new(
        StatusCode::CONFLICT,
        "already-unsealed",
        "Already unsealed",
        "the vault is open; no share is needed",
    ))
}

/// What one share submitted for KEK rotation came to.
pub(super) enum KekRotationStep {
    Counted(SealStatus),
    Rotated(u32),
}

pub(super) struct RotateKek;

impl Mutation for RotateKek {
    const OPERATION: Operation = Operation::KekRotate;
    type Path = NoPath;
    type Body = JsonBody<ShareFile>;
    type Done = KekRotationStep;

    async fn apply(input: Input<'_, Self>, _record: &Remembering<Self>) -> Result<KekRotationStep, Problem> {
        let app = input.app;
        let caller = input.caller;
        if app.custody != KekCustody::Shares {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "kek-rotation-needs-shares",
                "KEK rotation needs share custody",
                "with the development key file the KEK is not held by custodians; set kek.custody = \"shares\"",
            ));
        }
        let JsonBody(file) = input.body;
        let mut guard = app.kek_rotation.lock().await;
        // Behind: another node already rotated the store's KEK; this node
        // collects that new set's shares to adopt it (shares are never
        // stored, so no node can take the new KEK from the old one).
        let custody = app.vault.custody().await?;
        let behind = custody
            .as_ref()
            .filter(|c| c.kek_version > app.vault.kek_version())
            .map(|c| c.kek_version);
        let accept = match (&custody, behind) {
            (Some(c), Some(_)) => Accept::Only(c.manifest.set_id.clone()),
            (Some(c), None) => Accept::AnyBut(c.manifest.set_id.clone()),
            (None, _) => Accept::Any,
        };
        let collector = match guard.as_mut() {
            Some(collector) => {
                collector.retarget(accept);
                collector
            }
            None => guard.insert(ShareCollector::new(accept)),
        };
        let progress = collector.submit(&caller.actor.identity, &file);
        drop(file);
        let audit = |outcome: Outcome, detail: String| async move {
            app.vault
                .record_admin(&caller.actor, Operation::KekRotate, outcome, &detail)
                .await
        };
        match progress {
            Err(e) => {
                audit(
                    Outcome::Refused,
                    format!("share of the next KEK refused: {}", e.rule()),
                )
                .await?;
                Err(share_problem(&e))
            }
            Ok(Progress::Counted { have, need }) => {
                audit(
                    Outcome::Success,
                    format!("share of the next KEK counted: {have} of {need}"),
                )
                .await?;
                let (_, threshold, custodians) = collector.status();
                Ok(KekRotationStep::Counted(SealStatus {
                    sealed: false,
                    shares_submitted: have,
                    threshold,
                    custodians,
                }))
            }
            Ok(Progress::Assembled { kek, manifest, .. }) => {
                *guard = None;
                let version = match behind {
                    Some(version) => {
                        let next = Kek::with_version(version, &kek);
                        app.vault.adopt_kek(&caller.actor, next).await?
                    }
                    None => {
                        let version = app.vault.kek_version() + 1;
                        let next = Kek::with_version(version, &kek);
                        match app.vault.rotate_kek(&caller.actor, next, manifest).await {
                            // Another node assembled the same set first.
                            Err(VaultError::Contention) => {
                                let next = Kek::with_version(version, &kek);
                                app.vault.adopt_kek(&caller.actor, next).await?
                            }
                            other => other?,
                        }
                    }
                };
                Ok(KekRotationStep::Rotated(version))
            }
        }
    }

    fn answer(step: &KekRotationStep) -> Result<Answer, Problem> {
        match step {
            KekRotationStep::Counted(status) => Answer::json(StatusCode::ACCEPTED, status),
            KekRotationStep::Rotated(version) => Answer::json(
                StatusCode::OK,
                &KeyVersionResponse {
                    version: *version,
                    state: "current".to_owned(),
                },
            ),
        }
    }
}

/// KEK rotation: each custodian submits a share of a *new* set (made with
/// `tokenvault keys init-shares`). When enough have come, every key the KEK
/// protects is rewrapped under the new KEK in one atomic write, and the new
/// set replaces the old. Records are not re-encrypted. With several nodes,
/// custodians submit to every node (`keys rotate-kek --also`): the first
/// to assemble rotates, each other node adopts the new KEK once it has
/// assembled it too (answered the same way); until then it is not ready.
#[utoipa::path(post, path = "/v1/admin/kek/rotation", tag = "keys",
    params(("Idempotency-Key" = String, Header)), request_body(content = Object, content_type = "application/json", description = "a share file as `tokenvault keys init-shares` wrote it (a sealed one opened with the custodian's key first, as `keys unseal` does)"),
    responses((status = 200, body = KeyVersionResponse), (status = 202, body = SealStatus), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn rotate_kek(request: Mutate<RotateKek>) -> Result<Response, Problem> {
    request.run().await
}

/// The problem for a refused share: which rule, never the share.
pub(crate) fn share_problem(e: &CollectError) -> Problem {
    let status = match e {
        CollectError::DuplicateShare { .. } | CollectError::DuplicateCustodian => StatusCode::CONFLICT,
        CollectError::OtherCustodian { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Problem::new(status, "share-refused", "Share refused", e.to_string()).with_field("share", e.rule())
}
