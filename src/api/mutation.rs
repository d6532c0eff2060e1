//! One shape for every mutating request. An endpoint says only what is
//! particular to it (its operation, path and body types, how it applies,
//! how its result answers); `Mutate::run` does the rest, the same way for
//! all: authorize (auditing a denial with the parsed path object), take the
//! Idempotency-Key, MAC the method, the matched route, the real path and
//! the body, replay a remembered answer, parse path and body (auditing
//! every refusal), apply, and remember the answer, in the operation's own
//! write where the vault takes it.

use super::caller::Caller;
use super::extract::Body;
use super::idempotency::{self, Answer, Record};
use super::path_id::{PathValues, RawPath};
use super::problem::{FieldError, Problem};
use super::App;
use crate::domain::operation::Operation;
use crate::domain::validation::ValidationError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// What is particular to one mutating endpoint.
pub(super) trait Mutation: Sized + 'static {
    const OPERATION: Operation;
    /// The path's values, parsed (`NoPath` or one `PathId`).
    type Path: PathValues;
    /// The body (`JsonBody<Dto>` or `NoBody`).
    type Body: ReadBody;
    /// What the operation produced, before it is an answer.
    type Done: Send + Sync;

    /// Does the work. `record` joins the vault's write where the vault
    /// takes one (`*_joined`); otherwise the runner writes it after.
    fn apply(
        input: Input<'_, Self>,
        record: &Remembering<Self>,
    ) -> impl Future<Output = Result<Self::Done, Problem>> + Send;

    /// The answer for `done`: a status and a JSON body, or a problem.
    fn answer(done: &Self::Done) -> Result<Answer, Problem>;

    /// What a retry with the same key gets: by default the same answer.
    /// An endpoint whose answer must never be stored (a revealed PAN)
    /// remembers something else in its place.
    fn remembered(done: &Self::Done) -> Answer {
        answer_of::<Self>(done)
    }
}

/// The idempotency record of a request to `M`.
pub(super) type Remembering<M> = Record<fn(&<M as Mutation>::Done) -> Answer>;

fn answer_of<M: Mutation>(done: &M::Done) -> Answer {
    M::answer(done).unwrap_or_else(Answer::from)
}

fn remembered_of<M: Mutation>(done: &M::Done) -> Answer {
    M::remembered(done)
}

/// Answers a retry should not get again: server errors and "too many"
/// (the caller should retry them; one may be another node's request
/// with this key winning a race).
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The record of an answer known before the write (`done`), joined to a
/// vault write whose own result carries nothing the answer needs.
pub(super) struct KnownAnswer<'a, M: Mutation>(pub &'a Remembering<M>, pub M::Done);

impl<M: Mutation> crate::vault::Joined<()> for KnownAnswer<'_, M> {
    fn writes(&self, _done: &()) -> Result<crate::store::Batch, crate::vault::VaultError> {
        crate::vault::Joined::writes(self.0, &self.1)
    }
}

/// A request's parsed parts, handed to `Mutation::apply`.
pub(super) struct Input<'a, M: Mutation> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub path: M::Path,
    pub body: M::Body,
}

impl<M: Mutation> Input<'_, M> {
    /// The parsed value of body field `name`, or its audited refusal.
    pub async fn field<T>(&self, name: &str, parsed: Result<T, ValidationError>) -> Result<T, Problem> {
        self.app.field(self.caller, M::OPERATION, name, parsed).await
    }

    /// An audited refusal of body field `name`.
    pub async fn refuse(&self, name: &str, error: ValidationError) -> Problem {
        self.app
            .refuse_field(self.caller, M::OPERATION, name, error)
            .await
    }

    /// Checks several fields before refusing any, so one answer names them all.
    pub fn checks(&self) -> Checks<'_, M> {
        Checks {
            input: self,
            failed: Vec::new(),
        }
    }
}

/// Field checks gathered into one refusal: `take` each field, then `done`.
pub(super) struct Checks<'i, M: Mutation> {
    input: &'i Input<'i, M>,
    failed: Vec<(String, ValidationError)>,
}

impl<M: Mutation> Checks<'_, M> {
    /// The parsed value, or `None` with its error kept for `done`.
    pub fn take<T>(&mut self, name: &str, parsed: Result<T, ValidationError>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.failed.push((name.to_owned(), error));
                None
            }
        }
    }

    /// `Ok` when every field parsed (every `take` gave `Some`); otherwise
    /// one audited refusal whose `errors` lists each field and rule.
    pub async fn done(self) -> Result<(), Problem> {
        let mut failed = self.failed.into_iter();
        let Some((name, first)) = failed.next() else {
            return Ok(());
        };
        let rest: Vec<FieldError> = failed
            .map(|(field, error)| FieldError {
                field,
                rule: error.rule.code().to_owned(),
            })
            .collect();
        let input = self.input;
        Err(input
            .app
            .refuse_fields(input.caller, M::OPERATION, None, &name, first, &rest)
            .await)
    }
}

/// How a route reads its body.
pub(super) trait ReadBody: Sized + Send {
    fn read(
        app: &App,
        caller: &Caller,
        operation: Operation,
        headers: &HeaderMap,
        body: &[u8],
    ) -> impl Future<Output = Result<Self, Problem>> + Send;
}

/// A JSON body of type `T`; a malformed one is refused and audited.
pub(super) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> ReadBody for JsonBody<T> {
    async fn read(
        app: &App,
        caller: &Caller,
        operation: Operation,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, Problem> {
        app.parse_body(caller, operation, headers, body)
            .await
            .map(JsonBody)
    }
}

/// A route that takes no body. A body sent anyway never gets this far:
/// `api::refuse_unexpected_body` answers 400 for every route whose
/// OpenAPI operation has no request body.
pub(super) struct NoBody;

impl ReadBody for NoBody {
    async fn read(
        _app: &App,
        _caller: &Caller,
        _operation: Operation,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<Self, Problem> {
        Ok(NoBody)
    }
}

/// A request to endpoint `M`, as the handler receives it.
pub(super) struct Mutate<M> {
    app: Arc<App>,
    caller: Caller,
    method: Method,
    route: String,
    path: String,
    params: RawPath,
    headers: HeaderMap,
    body: Bytes,
    endpoint: PhantomData<fn() -> M>,
}

impl<M: Mutation> FromRequest<Arc<App>> for Mutate<M> {
    type Rejection = Problem;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Problem> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, app).await?;
        // Axum inserts the matched route before any handler runs.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .ok_or_else(Problem::internal)?;
        let params = RawPath::from_parts(&mut parts, app).await?;
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let headers = parts.headers.clone();
        let Body(body) = Body::from_request(Request::from_parts(parts, body), app).await?;
        Ok(Mutate {
            app: Arc::clone(app),
            caller,
            method,
            route,
            path,
            params,
            headers,
            body,
            endpoint: PhantomData,
        })
    }
}

impl<M: Mutation> Mutate<M> {
    pub(super) async fn run(self) -> Result<Response, Problem> {
        let app = &*self.app;
        let caller = &self.caller;
        let object = M::Path::object(app, &self.params);
        app.authorize(caller, M::OPERATION, object).await?;
        let key = idempotency::key(&self.headers)?;
        let parts: [&[u8]; 4] = [
            self.method.as_str().as_bytes(),
            self.route.as_bytes(),
            self.path.as_bytes(),
            &self.body,
        ];
        let record: Remembering<M> =
            Record::new(app, &caller.actor.identity, &key, &parts, remembered_of::<M>);
        let _same_key_queues_here = app.idempotency_locks.lock(record.store_key()).await;
        if let Some(replay) = record.replay(app).await? {
            return Ok(replay);
        }
        let done = self.apply(&record).await;
        let (answer, remembered) = match &done {
            Ok(done) => (answer_of::<M>(done), M::remembered(done)),
            Err(problem) => (Answer::from(problem.clone()), Answer::from(problem.clone())),
        };
        if done.is_ok() && record.was_joined() {
            return Ok(answer.into_response(false));
        }
        if is_transient(answer.status) {
            return match record.replay(app).await {
                Ok(Some(replay)) => Ok(replay),
                _ => Ok(answer.into_response(false)),
            };
        }
        if record
            .remember(app, &caller.actor, M::OPERATION, &remembered)
            .await?
        {
            return Ok(answer.into_response(false));
        }
        record.replay(app).await?.ok_or_else(Problem::internal)
    }

    async fn apply(&self, record: &Remembering<M>) -> Result<M::Done, Problem> {
        let app = &*self.app;
        let path = app.parse_path(&self.caller, M::OPERATION, &self.params).await?;
        let body = M::Body::read(app, &self.caller, M::OPERATION, &self.headers, &self.body).await?;
        let input = Input {
            app,
            caller: &self.caller,
            path,
            body,
        };
        M::apply(input, record).await
    }
}
