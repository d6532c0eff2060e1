//! One shape for every read by id, as `mutation` is for writes: an endpoint
//! says its operation, its path type and how it reads; `Read::run`
//! authorizes (auditing a denial with the parsed path object), parses the
//! path (auditing a refusal, the same way for every route) and answers JSON.

use super::caller::Caller;
use super::path_id::{PathValues, RawPath};
use super::problem::Problem;
use super::App;
use crate::domain::operation::Operation;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Json;
use serde::Serialize;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// What is particular to one read.
pub(super) trait Query: Sized + 'static {
    const OPERATION: Operation;
    /// The path's values, parsed (one `PathId`).
    type Path: PathValues;
    type Answer: Serialize;

    fn read(input: Reading<'_, Self>) -> impl Future<Output = Result<Self::Answer, Problem>> + Send;
}

/// A read's parsed parts, handed to `Query::read`.
pub(super) struct Reading<'a, Q: Query> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub path: Q::Path,
}

/// A request to read `Q`, as the handler receives it.
pub(super) struct Read<Q> {
    app: Arc<App>,
    caller: Caller,
    params: RawPath,
    endpoint: PhantomData<fn() -> Q>,
}

impl<Q: Query> FromRequestParts<Arc<App>> for Read<Q> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, app).await?;
        let params = RawPath::from_parts(parts, app).await?;
        Ok(Read {
            app: Arc::clone(app),
            caller,
            params,
            endpoint: PhantomData,
        })
    }
}

impl<Q: Query> Read<Q> {
    pub(super) async fn run(self) -> Result<Json<Q::Answer>, Problem> {
        Ok(Json(self.answer().await?))
    }

    /// The answer itself, for a route that does not answer JSON.
    pub(super) async fn answer(self) -> Result<Q::Answer, Problem> {
        let app = &*self.app;
        let caller = &self.caller;
        app.authorize(caller, Q::OPERATION, Q::Path::object(app, &self.params))
            .await?;
        let path = app.parse_path(caller, Q::OPERATION, &self.params).await?;
        Q::read(Reading { app, caller, path }).await
    }
}
