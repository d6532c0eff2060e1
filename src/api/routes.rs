//! The route table: every handler once, with its `#[utoipa::path]`. The
//! served router and the OpenAPI document's paths are both built from this
//! list (utoipa-axum's `routes!`), so a route cannot be served undocumented
//! or documented unserved.

use super::{
    audit, bindings, cards, channels, identities, keys, ops, passwords, payments, reconciliation,
    reveal_requests, tokens, App,
};
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn table() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(super::ApiDoc::openapi())
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .routes(routes!(ops::reload))
        .routes(routes!(cards::store))
        .routes(routes!(cards::store_bulk))
        .routes(routes!(cards::read))
        .routes(routes!(cards::erase))
        .routes(routes!(cards::reveal))
        .routes(routes!(reveal_requests::request))
        .routes(routes!(reveal_requests::approve))
        .routes(routes!(tokens::list))
        .routes(routes!(identities::store))
        .routes(routes!(identities::read))
        .routes(routes!(identities::erase))
        .routes(routes!(tokens::issue))
        .routes(routes!(tokens::read))
        .routes(routes!(tokens::suspend))
        .routes(routes!(tokens::resume))
        .routes(routes!(tokens::delete))
        .routes(routes!(passwords::set))
        .routes(routes!(passwords::change))
        .routes(routes!(passwords::verify))
        .routes(routes!(bindings::start))
        .routes(routes!(bindings::read))
        .routes(routes!(bindings::confirm))
        .routes(routes!(bindings::unbind))
        .routes(routes!(bindings::list))
        .routes(routes!(payments::debit))
        .routes(routes!(payments::read))
        .routes(routes!(payments::confirm))
        .routes(routes!(payments::refund))
        .routes(routes!(payments::read_refund))
        .routes(routes!(payments::cancel))
        .routes(routes!(payments::by_order))
        .routes(routes!(channels::notify))
        .routes(routes!(channels::list))
        .routes(routes!(channels::set_state))
        .routes(routes!(keys::seal_status))
        .routes(routes!(keys::unseal))
        .routes(routes!(keys::status))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::rotate_audit))
        .routes(routes!(keys::rotate_pepper))
        .routes(routes!(keys::rotate_fingerprint))
        .routes(routes!(keys::rotate_anchor))
        .routes(routes!(keys::rewrap))
        .routes(routes!(keys::retire))
        .routes(routes!(keys::rotate_kek))
        .routes(routes!(audit::page))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::export))
        .routes(routes!(audit::anchor))
        .routes(routes!(reconciliation::run))
        .routes(routes!(reconciliation::list))
        .routes(routes!(reconciliation::read))
        .routes(routes!(reconciliation::statement))
        .routes(routes!(reconciliation::queue))
        .routes(routes!(reconciliation::ledger))
        .routes(routes!(reconciliation::progress))
        .routes(routes!(reconciliation::resolve))
}
