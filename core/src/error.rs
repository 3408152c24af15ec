//! The one error type: every failure becomes `{"code", "detail"}` with the right status, over HTTP
//! (feature `http`) and in per-item results alike.
use http::StatusCode;
use sea_orm::{DbErr, SqlErr};
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Also used for what exists but the caller may not see, so nothing leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A write made from an outdated view: 409 with what the caller missed (`missed`, as the
    /// caller may see it) and the position to resend from.
    #[error("{detail}")]
    Outdated { detail: String, missed: Vec<serde_json::Value>, position: i64 },
    /// The path exists, the method does not; the router adds the `Allow` header.
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// A validation error with its own wording (some integrations expect an exact sentence).
    #[error("{0}")]
    ValidationDetail(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("service unavailable")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, snake_case machine code, e.g. `not_found`.
    pub code: String,
    /// What went wrong, for a person.
    pub detail: String,
    /// `new_activity` only: the events the caller had not seen, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub missed: Option<Vec<serde_json::Value>>,
    /// `new_activity` only: the newest event of the thread, to resend with as `seen_event_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(detail.into())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(detail.into())
    }

    /// Whether this is a unique-constraint violation, so a caller can name the field.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Db(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Outdated { .. } => (StatusCode::CONFLICT, "new_activity"),
            Error::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Error::ValidationDetail(_) => (StatusCode::BAD_REQUEST, "validation"),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::InsufficientStorage(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Db(e) if is_unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Db(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                (StatusCode::CONFLICT, "conflict")
            }
            Error::Db(_) | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

/// Connection-level failures (database down, restarting, sessions killed, pool exhausted,
/// SQLite busy) are retryable: 503. Judged by the driver's error kind and SQLSTATE where there
/// is one, by message otherwise.
fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_) => return true,
                sqlx::Error::Database(db) => {
                    // PostgreSQL class 08 (connection exception), 57P01–57P05 (admin shutdown, crash
                    // shutdown, cannot connect now, database dropped, idle session timeout), 53300
                    // (too many connections).
                    if let Some(code) = db.code()
                        && (code.starts_with("08") || code.starts_with("57P") || code == "53300")
                    {
                        return true;
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    let text = e.to_string();
    text.contains("database is locked")
        || text.contains("Connection refused")
        || text.contains("pool timed out")
        || text.contains("connection closed")
        || text.contains("terminating connection")
        || text.contains("not currently accepting connections")
}

impl Error {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The `{code, detail}` body this error answers with (also for per-item errors).
    pub fn body(&self) -> ErrorBody {
        self.parts().1
    }

    fn parts(&self) -> (StatusCode, ErrorBody) {
        let (status, code) = self.status_and_code();
        let detail = match self {
            Error::Db(e) if status == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(error = %e, "database unavailable");
                "the database is unavailable, try again shortly".to_string()
            }
            Error::Db(e) if status == StatusCode::CONFLICT => {
                tracing::debug!(error = %e, "unique violation");
                "a record with these values already exists".to_string()
            }
            Error::Db(e) => {
                tracing::error!(error = %e, "database error");
                "internal error".to_string()
            }
            Error::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".to_string()
            }
            Error::Unauthorized(why) => why.clone(),
            Error::Unavailable(why) => why.clone(),
            other => other.to_string(),
        };
        let (missed, position) = match self {
            Error::Outdated { missed, position, .. } => (Some(missed.clone()), Some(*position)),
            _ => (None, None),
        };
        (status, ErrorBody { code: code.to_string(), detail, missed, position })
    }
}

/// The answer to an HTTP request, and the extractors' rejections in our format: for the HTTP
/// layer only (feature `http`).
#[cfg(feature = "http")]
mod answers {
    use axum::{
        Json,
        extract::rejection::{JsonRejection, PathRejection, QueryRejection},
        http::{HeaderValue, StatusCode, header},
        response::{IntoResponse, Response},
    };

    use super::Error;

    impl IntoResponse for Error {
        fn into_response(self) -> Response {
            let (status, body) = self.parts();
            let mut response = (status, Json(body)).into_response();
            if let Error::TooManyRequests { retry_after_secs } = self {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
            }
            response
        }
    }

    impl From<JsonRejection> for Error {
        fn from(rejection: JsonRejection) -> Self {
            match rejection {
                JsonRejection::JsonDataError(e) => {
                    // serde's message names the field path, e.g. "status: unknown variant `x`".
                    Error::Validation {
                        field: "body".into(),
                        message: e
                            .body_text()
                            .replace("Failed to deserialize the JSON body into the target type: ", ""),
                    }
                }
                JsonRejection::MissingJsonContentType(_) => {
                    Error::UnsupportedMediaType("expected a JSON body with `content-type: application/json`".into())
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    Error::PayloadTooLarge("request body is too large".into())
                }
                other => Error::BadRequest(format!("malformed JSON: {}", other.body_text())),
            }
        }
    }

    impl From<QueryRejection> for Error {
        fn from(rejection: QueryRejection) -> Self {
            Error::Validation { field: "query".into(), message: rejection.body_text() }
        }
    }

    impl From<PathRejection> for Error {
        fn from(rejection: PathRejection) -> Self {
            Error::BadRequest(rejection.body_text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_503_others_500() {
        use sea_orm::{RuntimeErr, sqlx};
        use std::sync::Arc;
        let io = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))));
        assert_eq!(Error::Db(io).status_and_code().0, StatusCode::SERVICE_UNAVAILABLE);
        let closed = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolClosed)));
        assert_eq!(Error::Db(closed).status_and_code().0, StatusCode::SERVICE_UNAVAILABLE);
        let killed = DbErr::Exec(RuntimeErr::Internal("terminating connection due to administrator command".into()));
        assert_eq!(Error::Db(killed).status_and_code().0, StatusCode::SERVICE_UNAVAILABLE);
        let other = DbErr::Custom("syntax error".into());
        assert_eq!(Error::Db(other).status_and_code().0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
