//! The OpenAPI document, generated from the handlers' annotations and the
//! DTO types by utoipa; served at /v1/openapi.json and by `tokenvault openapi`.

use super::dto::*;
use super::flow_dto::*;
use super::payment_dto::*;
use super::problem::Problem;
use super::{audit, bindings, cards, channels, identities, keys, ops, passwords, payments, tokens};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tokenvault",
        description = "Tokenization vault: cards, identities, payment passwords, card binding, payment tokens (支付标记), and debits, refunds, cancels and unbinding on tokens, and key custody (unseal from custodians' KEK shares, data-key rotation, rewrap, retirement, KEK rotation), over mutual TLS. Every call is authenticated by its client certificate and authorised by policy."
    ),
    paths(
        cards::store,
        cards::store_bulk,
        cards::read,
        cards::reveal,
        identities::store,
        identities::read,
        tokens::issue,
        tokens::read,
        tokens::list,
        tokens::suspend,
        tokens::resume,
        tokens::delete,
        passwords::set,
        passwords::change,
        passwords::verify,
        bindings::start,
        bindings::confirm,
        bindings::read,
        bindings::list,
        bindings::unbind,
        payments::debit,
        payments::read,
        payments::by_order,
        payments::confirm,
        payments::refund,
        payments::read_refund,
        payments::cancel,
        channels::notify,
        channels::list,
        channels::set_state,
        audit::page,
        audit::verify,
        audit::export,
        ops::health,
        ops::ready,
        ops::metrics,
        ops::openapi,
        ops::reload,
        keys::seal_status,
        keys::unseal,
        keys::status,
        keys::rotate,
        keys::rewrap,
        keys::retire,
        keys::rotate_kek,
    ),
    components(schemas(
        Problem,
        StoreCardRequest,
        CardResponse,
        StoreIdentityRequest,
        IdentityResponse,
        ControlsDto,
        IssueTokenRequest,
        UsageDto,
        TokenResponse,
        TokenListResponse,
        RevealRequest,
        RevealResponse,
        crate::audit::AuditRecord,
        AuditPage,
        ChainBreak,
        VerifyResponse,
        StatusResponse,
        SetPasswordRequest,
        ChangePasswordRequest,
        VerifyPasswordRequest,
        PasswordResponse,
        StartBindingRequest,
        ConfirmBindingRequest,
        BindingResponse,
        BindingListResponse,
        DebitRequest,
        ConfirmPaymentRequest,
        RefundRequest,
        RefundResponse,
        RouteAttemptResponse,
        PaymentResponse,
        ChannelStateRequest,
        NotificationAck,
        crate::orchestration::routing::ChannelHealth,
        SealStatus,
        DataKeyView,
        RewrapView,
        CustodyView,
        KeyStatusResponse,
        KeyVersionResponse,
    ))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    #[test]
    fn every_route_is_documented() {
        let doc = super::ApiDoc::openapi();
        let source = include_str!("mod.rs");
        let routes: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert!(routes.len() >= 19, "{routes:?}");
        for route in routes {
            assert!(
                doc.paths.paths.contains_key(route),
                "{route} is served but not in the OpenAPI document"
            );
        }
        let json = doc.to_json().unwrap();
        assert!(json.contains("\"Problem\""));
    }
}
