//! One error type for every handler, answered as `{"error": code, "detail": text}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dispersy::node::CommandError;

use crate::daemon::views::ErrorBody;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or names something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong bearer token.
    #[error("a valid bearer token is required (Authorization: Bearer <token>, or ?token=)")]
    Unauthorized,
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The method is not defined on this path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The request conflicts with the current state (already joined, ...).
    #[error("{0}")]
    Conflict(String),
    /// The node holds no permission for this.
    #[error("{0}")]
    Forbidden(String),
    /// The community is destroyed.
    #[error("{0}")]
    Gone(String),
    /// Too large (a message that does not fit a datagram, a batch too long).
    #[error("{0}")]
    TooLarge(String),
    /// Too many open event streams.
    #[error("{0}")]
    TooMany(String),
    /// This node does not have the part that would answer (yet).
    #[error("{0}")]
    NotImplemented(String),
    /// The node is stopping.
    #[error("the node is stopping")]
    Unavailable,
    /// Something failed inside (the store, the file system).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many"),
            ApiError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not-implemented"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A bad request whose detail starts with the field at fault.
    pub fn field(field: &str, detail: impl std::fmt::Display) -> ApiError {
        ApiError::BadRequest(format!("{field}: {detail}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if matches!(self, ApiError::Internal(_)) {
            tracing::warn!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: code.into(),
            detail: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let text = e.to_string();
        match e {
            CommandError::UnknownCommunity(_) => ApiError::NotFound(text),
            CommandError::UnknownMeta(_)
            | CommandError::BadPayload(_)
            | CommandError::Invalid(_) => ApiError::BadRequest(text),
            CommandError::AlreadyJoined(_) | CommandError::TooManyCommunities(_) => {
                ApiError::Conflict(text)
            }
            CommandError::NotPermitted(_) => ApiError::Forbidden(text),
            CommandError::TooLarge(_) => ApiError::TooLarge(text),
            CommandError::Destroyed(_) => ApiError::Gone(text),
            CommandError::Store(_) => ApiError::Internal(text),
        }
    }
}

impl From<dispersy_net::Error> for ApiError {
    fn from(e: dispersy_net::Error) -> Self {
        match e {
            dispersy_net::Error::Stopped => ApiError::Unavailable,
            dispersy_net::Error::Command(c) => c.into(),
        }
    }
}

impl From<dispersy::store::StoreError> for ApiError {
    fn from(e: dispersy::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(format!("request body: {}", other.body_text()))
            }
            other => ApiError::BadRequest(format!("request body: {}", other.body_text())),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(format!("path: {}", r.body_text()))
    }
}

/// The handlers' result.
pub type ApiResult<T> = Result<T, ApiError>;
