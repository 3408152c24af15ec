use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Multipart, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path};
use crate::{
    auth::AuthUser,
    domain::attachments::{self, Attachment, AttachmentPatch},
    error::{Error, ErrorBody, Result},
    state::AppState,
    storage::{BlobWriter, StagedBlob},
};

pub fn router(upload_limit: usize) -> OpenApiRouter<AppState> {
    // Our own streaming check answers 413 at the exact limit; this cap only bounds multipart
    // framing around it.
    let body_cap = DefaultBodyLimit::max(upload_limit + 64 * 1024);
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(get, rename, delete))
        .routes(routes!(download, replace))
        .layer(body_cap)
}

/// A multipart form with one `file` field (and nothing else).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `Multipart`, whose rejections are our JSON errors: 415 for a body that is not
/// `multipart/form-data`, 400 for a malformed one (axum's own answer is plain text).
pub struct Upload(Multipart);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Upload {
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self> {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        if !is_multipart {
            return Err(Error::UnsupportedMediaType(
                "expected a `multipart/form-data` body with a `file` field".into(),
            ));
        }
        Multipart::from_request(req, state)
            .await
            .map(Upload)
            .map_err(|e| Error::bad_request(format!("malformed multipart body: {}", e.body_text())))
    }
}

/// Streams the `file` field to a staging file, enforcing the size limit as it goes. The form
/// must hold exactly that one field: anything else is refused, and nothing is kept.
async fn stage_upload(state: &AppState, mut form: Multipart) -> Result<(String, Option<String>, StagedBlob)> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge(format!("attachments may be at most {} bytes", state.config.upload_limit_bytes))
        } else {
            Error::bad_request(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    let only_file = || Error::validation("body", "the form must have exactly one field, named `file`");
    let mut staged: Option<(String, Option<String>, StagedBlob)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                if let Some((_, _, blob)) = staged {
                    blob.discard().await;
                }
                return Err(bad(e));
            }
        };
        let mut field = field;
        if field.name() != Some("file") || staged.is_some() {
            if let Some((_, _, blob)) = staged {
                blob.discard().await;
            }
            return Err(only_file());
        }
        let filename = field.file_name().unwrap_or("file").to_string();
        let content_type = field.content_type().map(str::to_string);
        let mut writer =
            BlobWriter::create(state.store.storage.as_ref(), state.config.upload_limit_bytes as u64).await?;
        loop {
            match field.chunk().await {
                // On failure (too large, disk full) the writer has removed its partial file.
                Ok(Some(chunk)) => writer.write(&chunk).await?,
                Ok(None) => break,
                Err(e) => {
                    writer.abort().await;
                    return Err(bad(e));
                }
            }
        }
        staged = Some((filename, content_type, writer.finish().await?));
    }
    staged.ok_or_else(|| Error::validation("file", "a multipart field named `file` is required"))
}

/// Attachments of a ticket.
#[utoipa::path(get, path = "/api/tickets/{id}/attachments", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Vec<Attachment>), (status = 404, body = ErrorBody)))]
async fn list(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Vec<Attachment>>> {
    Ok(Json(attachments::list(&state.store, &user, &id).await?))
}

/// Upload a file to a ticket (multipart field `file`).
#[utoipa::path(post, path = "/api/tickets/{id}/attachments", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Upload(form): Upload,
) -> Result<(StatusCode, Json<Attachment>)> {
    attachments::check_can_upload(&state.store, &user, &id).await?;
    let (filename, content_type, blob) = stage_upload(&state, form).await?;
    let created = attachments::create(&state.store, &user, &id, &filename, content_type.as_deref(), blob).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// An attachment's metadata.
#[utoipa::path(get, path = "/api/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Attachment), (status = 404, body = ErrorBody)))]
async fn get(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Attachment>> {
    Ok(Json(attachments::readable(&state.store.db, &user, &id).await?.0.into()))
}

/// Rename an attachment (its uploader or staff).
#[utoipa::path(patch, path = "/api/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)), request_body = AttachmentPatch,
    responses((status = 200, body = Attachment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rename(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<AttachmentPatch>,
) -> Result<Json<Attachment>> {
    Ok(Json(attachments::rename(&state.store, &user, &id, patch, v).await?))
}

/// Delete an attachment (its uploader or staff).
#[utoipa::path(delete, path = "/api/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode> {
    attachments::delete(&state.store, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded`.
fn content_disposition(filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Download the file. Always as an attachment, never sniffed, so uploaded HTML cannot run here.
#[utoipa::path(get, path = "/api/attachments/{id}/content", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "the file's bytes, with the content type it was uploaded with", content_type = "*/*"), (status = 404, body = ErrorBody)))]
async fn download(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Response> {
    let (a, _) = attachments::readable(&state.store.db, &user, &id).await?;
    let file = state.store.storage.open(&a.sha256).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(a.size_bytes));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(&a.filename));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", a.sha256)).unwrap_or(HeaderValue::from_static("\"\"")),
    );
    let mut response = Response::new(Body::from_stream(ReaderStream::new(file)));
    *response.headers_mut() = headers;
    Ok(response)
}

/// Replace the file's content (its uploader or staff).
#[utoipa::path(put, path = "/api/attachments/{id}/content", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = Attachment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Upload(form): Upload,
) -> Result<Json<Attachment>> {
    attachments::check_can_modify(&state.store, &user, &id).await?;
    let (_, content_type, blob) = stage_upload(&state, form).await?;
    Ok(Json(attachments::replace_content(&state.store, &user, &id, content_type.as_deref(), blob).await?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn disposition_is_safe_for_any_name() {
        let v = content_disposition("résumé \"final\".pdf");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""), "{s}");
        assert!(s.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"), "{s}");
    }
}
