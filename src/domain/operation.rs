//! Every operation the vault offers, by its stable name. Policies grant these
//! names; audit records carry them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum Operation {
    CardStore,
    CardRead,
    /// Break-glass detokenisation: returns a PAN.
    CardReveal,
    IdentityStore,
    IdentityRead,
    TokenIssue,
    TokenRead,
    TokenList,
    TokenSuspend,
    TokenResume,
    TokenDelete,
    TokenReserve,
    ReservationCommit,
    ReservationRelease,
    ReservationRead,
    AuditRead,
    AuditVerify,
    AuditExport,
    MetricsRead,
    OpenApiRead,
    AdminReload,
    /// The gateway opened card and identity data to ask a channel to sign.
    GatewaySignApply,
    /// The gateway asked a channel to complete a signing.
    GatewaySignConfirm,
    /// The gateway asked a channel to cancel an agreement.
    GatewaySignCancel,
    /// The gateway opened a reserved phone number to send the platform's code.
    GatewaySms,
    PasswordSet,
    PasswordChange,
    PasswordVerify,
    BindingStart,
    BindingConfirm,
    BindingRead,
    BindingList,
    /// The gateway opened an agreement number to debit at a channel.
    GatewayPay,
    PaymentDebit,
    /// The SMS code of a debit that signs at a backup channel first.
    PaymentConfirm,
    PaymentRead,
    PaymentRefund,
    PaymentCancel,
    /// A bank channel posts a payment result.
    PaymentNotify,
    BindingUnbind,
    ChannelRead,
    /// Mark a channel down or up for routing.
    ChannelManage,
    /// A custodian submits a KEK share to unseal the service.
    KeyUnseal,
    /// Key versions, records per version, budgets, rewrap progress.
    KeyStatus,
    /// Add a data-key version for all new writes (also done automatically).
    KeyRotate,
    /// Start re-encrypting every record under the newest data-key version.
    KeyRewrap,
    /// Retire a data-key version no record uses.
    KeyRetire,
    /// A custodian submits a share of the next KEK; the data keys are
    /// rewrapped once enough have arrived.
    KekRotate,
    /// The background sweep deleted remembered answers past their time.
    IdempotencySweep,
    /// The service opened its audit trail (a start, or the unseal).
    ServiceStart,
    /// The service closed its audit trail on a graceful stop. A start
    /// with no stop before it is a crash or a kill.
    ServiceStop,
    /// A node recorded every audit chain's head in its own chain, tying
    /// the chains of several nodes together.
    AuditCheckpoint,
    /// Every chain's head signed as an anchor for keeping off the host
    /// (`audit::anchor`), on a schedule or on demand.
    AuditAnchor,
    /// The audit key moved to a new version (by hand, or a node following
    /// another's rotation): the record is the first MACed with it.
    KeyRotateAudit,
    /// A new pepper version for payment-password hashes.
    KeyRotatePepper,
    /// A new PAN fingerprint key version for the duplicate index.
    KeyRotateFingerprint,
    /// A new signing key version for audit anchors.
    KeyRotateAnchor,
    /// TLS handshakes that failed (no, unknown, expired or revoked client
    /// certificates, protocol errors, time-outs), counted per source and
    /// cause over an interval: one record each interval there were any.
    TlsHandshakeFailed,
    /// A card and its tokens erased (PCI DSS 3.2.1, PIPL deletion).
    CardErase,
    /// An identity's record erased (PIPL deletion).
    IdentityErase,
    /// A settled payment past its retention deleted with its indexes.
    PaymentPurge,
    /// A break-glass operator asks to reveal a card's PAN, with a reason:
    /// the first of dual control's two identities.
    CardRevealRequest,
    /// A second, different identity approves a requested reveal.
    RevealApprove,
    /// The audit sink (the trail's copy outside the store) started
    /// copying, from which record.
    AuditSinkStart,
    /// The audit sink stopped copying on a graceful stop, after which record.
    AuditSinkStop,
    /// A channel's daily statement matched against the vault's payments.
    ReconciliationRun,
    /// Reconciliation runs and their discrepancies read.
    ReconciliationRead,
    /// One statement line or vault success that did not match, recorded
    /// with its run.
    ReconciliationDiscrepancy,
    /// What was done about a discrepancy, recorded by hand.
    ReconciliationResolve,
    /// A node took a background task's lease (or its name's) over.
    LeaseTake,
}

impl Operation {
    pub const ALL: [Operation; 70] = [
        Operation::CardStore,
        Operation::CardRead,
        Operation::CardReveal,
        Operation::IdentityStore,
        Operation::IdentityRead,
        Operation::TokenIssue,
        Operation::TokenRead,
        Operation::TokenList,
        Operation::TokenSuspend,
        Operation::TokenResume,
        Operation::TokenDelete,
        Operation::TokenReserve,
        Operation::ReservationCommit,
        Operation::ReservationRelease,
        Operation::ReservationRead,
        Operation::AuditRead,
        Operation::AuditVerify,
        Operation::AuditExport,
        Operation::MetricsRead,
        Operation::OpenApiRead,
        Operation::AdminReload,
        Operation::GatewaySignApply,
        Operation::GatewaySignConfirm,
        Operation::GatewaySignCancel,
        Operation::GatewaySms,
        Operation::PasswordSet,
        Operation::PasswordChange,
        Operation::PasswordVerify,
        Operation::BindingStart,
        Operation::BindingConfirm,
        Operation::BindingRead,
        Operation::BindingList,
        Operation::GatewayPay,
        Operation::PaymentDebit,
        Operation::PaymentConfirm,
        Operation::PaymentRead,
        Operation::PaymentRefund,
        Operation::PaymentCancel,
        Operation::PaymentNotify,
        Operation::BindingUnbind,
        Operation::ChannelRead,
        Operation::ChannelManage,
        Operation::KeyUnseal,
        Operation::KeyStatus,
        Operation::KeyRotate,
        Operation::KeyRewrap,
        Operation::KeyRetire,
        Operation::KekRotate,
        Operation::IdempotencySweep,
        Operation::ServiceStart,
        Operation::ServiceStop,
        Operation::AuditCheckpoint,
        Operation::AuditAnchor,
        Operation::KeyRotateAudit,
        Operation::KeyRotatePepper,
        Operation::KeyRotateFingerprint,
        Operation::KeyRotateAnchor,
        Operation::TlsHandshakeFailed,
        Operation::CardErase,
        Operation::IdentityErase,
        Operation::PaymentPurge,
        Operation::CardRevealRequest,
        Operation::RevealApprove,
        Operation::AuditSinkStart,
        Operation::AuditSinkStop,
        Operation::ReconciliationRun,
        Operation::ReconciliationRead,
        Operation::ReconciliationDiscrepancy,
        Operation::ReconciliationResolve,
        Operation::LeaseTake,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CardStore => "card.store",
            Operation::CardRead => "card.read",
            Operation::CardReveal => "card.reveal",
            Operation::IdentityStore => "identity.store",
            Operation::IdentityRead => "identity.read",
            Operation::TokenIssue => "token.issue",
            Operation::TokenRead => "token.read",
            Operation::TokenList => "token.list",
            Operation::TokenSuspend => "token.suspend",
            Operation::TokenResume => "token.resume",
            Operation::TokenDelete => "token.delete",
            Operation::TokenReserve => "token.reserve",
            Operation::ReservationCommit => "reservation.commit",
            Operation::ReservationRelease => "reservation.release",
            Operation::ReservationRead => "reservation.read",
            Operation::AuditRead => "audit.read",
            Operation::AuditVerify => "audit.verify",
            Operation::AuditExport => "audit.export",
            Operation::MetricsRead => "metrics.read",
            Operation::OpenApiRead => "openapi.read",
            Operation::AdminReload => "admin.reload",
            Operation::GatewaySignApply => "gateway.sign_apply",
            Operation::GatewaySignConfirm => "gateway.sign_confirm",
            Operation::GatewaySignCancel => "gateway.sign_cancel",
            Operation::GatewaySms => "gateway.sms",
            Operation::PasswordSet => "password.set",
            Operation::PasswordChange => "password.change",
            Operation::PasswordVerify => "password.verify",
            Operation::BindingStart => "binding.start",
            Operation::BindingConfirm => "binding.confirm",
            Operation::BindingRead => "binding.read",
            Operation::BindingList => "binding.list",
            Operation::GatewayPay => "gateway.pay",
            Operation::PaymentDebit => "payment.debit",
            Operation::PaymentConfirm => "payment.confirm",
            Operation::PaymentRead => "payment.read",
            Operation::PaymentRefund => "payment.refund",
            Operation::PaymentCancel => "payment.cancel",
            Operation::PaymentNotify => "payment.notify",
            Operation::BindingUnbind => "binding.unbind",
            Operation::ChannelRead => "channel.read",
            Operation::ChannelManage => "channel.manage",
            Operation::KeyUnseal => "keys.unseal",
            Operation::KeyStatus => "keys.status",
            Operation::KeyRotate => "keys.rotate",
            Operation::KeyRewrap => "keys.rewrap",
            Operation::KeyRetire => "keys.retire",
            Operation::KekRotate => "keys.rotate_kek",
            Operation::IdempotencySweep => "idempotency.sweep",
            Operation::ServiceStart => "service.start",
            Operation::ServiceStop => "service.stop",
            Operation::AuditCheckpoint => "audit.checkpoint",
            Operation::AuditAnchor => "audit.anchor",
            Operation::KeyRotateAudit => "keys.rotate_audit",
            Operation::KeyRotatePepper => "keys.rotate_pepper",
            Operation::KeyRotateFingerprint => "keys.rotate_fingerprint",
            Operation::KeyRotateAnchor => "keys.rotate_anchor",
            Operation::TlsHandshakeFailed => "tls.handshake_failed",
            Operation::CardErase => "card.erase",
            Operation::IdentityErase => "identity.erase",
            Operation::PaymentPurge => "payment.purge",
            Operation::CardRevealRequest => "card.reveal_request",
            Operation::RevealApprove => "reveal.approve",
            Operation::AuditSinkStart => "audit.sink_start",
            Operation::AuditSinkStop => "audit.sink_stop",
            Operation::ReconciliationRun => "reconciliation.run",
            Operation::ReconciliationRead => "reconciliation.read",
            Operation::ReconciliationDiscrepancy => "reconciliation.discrepancy",
            Operation::ReconciliationResolve => "reconciliation.resolve",
            Operation::LeaseTake => "lease.take",
        }
    }

    /// Operations the vault performs itself (gateway calls, sweeps):
    /// audited, never granted to a caller.
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            Operation::IdempotencySweep
                | Operation::PaymentPurge
                | Operation::ServiceStart
                | Operation::ServiceStop
                | Operation::AuditSinkStart
                | Operation::AuditSinkStop
                | Operation::ReconciliationDiscrepancy
                | Operation::AuditCheckpoint
                | Operation::TlsHandshakeFailed
                | Operation::LeaseTake
                | Operation::GatewaySignApply
                | Operation::GatewaySignConfirm
                | Operation::GatewaySignCancel
                | Operation::GatewaySms
                | Operation::GatewayPay
        )
    }

    /// Reads that return no secret and change nothing: their audit record
    /// is applied before the answer leaves, but its flush is not awaited
    /// (`vault::committer`). A reveal returns a PAN and key status is a key
    /// operation: neither is one.
    pub fn is_plain_read(self) -> bool {
        matches!(
            self,
            Operation::CardRead
                | Operation::IdentityRead
                | Operation::TokenRead
                | Operation::TokenList
                | Operation::ReservationRead
                | Operation::AuditRead
                | Operation::AuditVerify
                | Operation::AuditExport
                | Operation::MetricsRead
                | Operation::OpenApiRead
                | Operation::BindingRead
                | Operation::BindingList
                | Operation::PaymentRead
                | Operation::ChannelRead
                | Operation::ReconciliationRead
        )
    }

    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl TryFrom<String> for Operation {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Operation::parse(&s).ok_or_else(|| format!("unknown operation `{s}`"))
    }
}

impl From<Operation> for String {
    fn from(op: Operation) -> String {
        op.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reads_are_reads_and_reveal_and_key_status_are_not() {
        for op in Operation::ALL.into_iter().filter(|op| op.is_plain_read()) {
            let verb = op.as_str().rsplit('.').next().unwrap();
            assert!(
                ["read", "list", "verify", "export"].contains(&verb),
                "{} is not a read",
                op.as_str()
            );
        }
        assert!(!Operation::CardReveal.is_plain_read());
        assert!(!Operation::KeyStatus.is_plain_read());
        assert!(!Operation::PasswordVerify.is_plain_read());
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
    }
}
