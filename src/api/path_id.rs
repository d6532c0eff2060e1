//! Values a route names in its path (`{token}`, `{payment_id}`, …), parsed
//! as their kind. The audit object and the parsed value come from the same
//! parser, so an audit record names a path value only when it parsed.

use super::problem::Problem;
use super::App;
use crate::domain::refs::{CardRef, IdentityRef, UserId};
use crate::domain::subject::AuditSubject;
use crate::domain::validation::ValidationError;
use crate::orchestration::{BindingId, PaymentId};
use crate::vault::token::TokenNumber;
use crate::vault::AuditObject;

/// The path values of one request, percent-decoded, by template name.
pub(super) struct RawPath(pub(super) Vec<(String, String)>);

impl RawPath {
    /// The path values of a request, as the router matched them.
    pub(super) async fn from_parts(
        parts: &mut axum::http::request::Parts,
        app: &std::sync::Arc<App>,
    ) -> Result<Self, Problem> {
        use axum::extract::{FromRequestParts, RawPathParams};
        let params = RawPathParams::from_request_parts(parts, app).await.map_err(|_| {
            Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "malformed-path",
                "Malformed path",
                "a path parameter is not valid UTF-8",
            )
        })?;
        Ok(RawPath(
            params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        ))
    }

    /// The value of `{name}`; empty when the route has no such segment,
    /// which then fails its parser like any malformed value.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One kind of id a path can hold.
pub(super) trait PathId: AuditSubject + Sized + Send + Sync {
    /// Its name in the route template and in problem documents.
    const NAME: &'static str;
    fn parse_in(app: &App, raw: &str) -> Result<Self, ValidationError>;
}

/// What a route's path holds: nothing (`NoPath`) or one id.
pub(super) trait PathValues: Sized + Send + Sync {
    /// The audit object: the parsed id, or a keyed digest of what was sent.
    fn object(app: &App, raw: &RawPath) -> Option<AuditObject>;
    /// The parsed values, or the field at fault and why.
    fn parse(app: &App, raw: &RawPath) -> Result<Self, (&'static str, ValidationError)>;
}

pub(super) struct NoPath;

impl PathValues for NoPath {
    fn object(_app: &App, _raw: &RawPath) -> Option<AuditObject> {
        None
    }
    fn parse(_app: &App, _raw: &RawPath) -> Result<Self, (&'static str, ValidationError)> {
        Ok(NoPath)
    }
}

impl<T: PathId> PathValues for T {
    fn object(app: &App, raw: &RawPath) -> Option<AuditObject> {
        Some(app.object(raw.get(T::NAME), |text| T::parse_in(app, text)))
    }
    fn parse(app: &App, raw: &RawPath) -> Result<Self, (&'static str, ValidationError)> {
        T::parse_in(app, raw.get(T::NAME)).map_err(|e| (T::NAME, e))
    }
}

/// Only a token inside this vault's configured range.
impl PathId for TokenNumber {
    const NAME: &'static str = "token";
    fn parse_in(app: &App, raw: &str) -> Result<Self, ValidationError> {
        app.vault.config().token_range.parse_token(raw)
    }
}

/// A data-key version, `{version}`: a whole number from 1.
impl PathId for u32 {
    const NAME: &'static str = "version";
    fn parse_in(_app: &App, raw: &str) -> Result<Self, ValidationError> {
        use crate::domain::validation::{Field, Rule};
        match raw.parse::<u32>() {
            Ok(version) if version > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(version),
            _ => Err(ValidationError::new(
                Field::KeyVersion,
                Rule::Format,
                "the version is a whole number from 1",
            )),
        }
    }
}

macro_rules! path_id {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl PathId for $ty {
            const NAME: &'static str = $name;
            fn parse_in(_app: &App, raw: &str) -> Result<Self, ValidationError> {
                <$ty>::parse(raw)
            }
        }
    )*};
}

path_id!(
    CardRef => "card_ref",
    IdentityRef => "identity_ref",
    UserId => "user_id",
    BindingId => "binding_id",
    PaymentId => "payment_id",
    crate::domain::ids::ChannelId => "channel",
    crate::domain::refs::RevealRequestId => "request_id",
    crate::orchestration::reconcile::RunId => "run_id",
    crate::orchestration::reconcile::DiscrepancyId => "discrepancy_id",
);

/// A merchant's order, `{merchant}` and `{order_id}`: the audit object
/// names both (each digested if it holds what looks like a card number).
pub(super) struct OrderPath {
    pub merchant: crate::domain::ids::MerchantId,
    pub order: crate::orchestration::payment::OrderId,
}

impl PathValues for OrderPath {
    fn object(app: &App, raw: &RawPath) -> Option<AuditObject> {
        Some(app.order_object(raw.get("merchant"), raw.get("order_id")))
    }
    fn parse(_app: &App, raw: &RawPath) -> Result<Self, (&'static str, ValidationError)> {
        Ok(OrderPath {
            merchant: crate::domain::ids::MerchantId::parse(raw.get("merchant"))
                .map_err(|e| ("merchant", e))?,
            order: crate::orchestration::payment::OrderId::parse(raw.get("order_id"))
                .map_err(|e| ("order_id", e))?,
        })
    }
}

/// One refund of a payment, `{payment_id}` and `{refund_id}`: the audit
/// object is the payment.
pub(super) struct RefundPath {
    pub payment: PaymentId,
    pub refund: crate::orchestration::payment::RefundId,
}

impl PathValues for RefundPath {
    fn object(app: &App, raw: &RawPath) -> Option<AuditObject> {
        <PaymentId as PathValues>::object(app, raw)
    }
    fn parse(app: &App, raw: &RawPath) -> Result<Self, (&'static str, ValidationError)> {
        Ok(RefundPath {
            payment: <PaymentId as PathValues>::parse(app, raw)?,
            refund: crate::orchestration::payment::RefundId::parse(raw.get("refund_id"))
                .map_err(|e| ("refund_id", e))?,
        })
    }
}
