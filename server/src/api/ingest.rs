//! Routes for inbound ingestion (and a ticket's suggested articles, ranked from its text). Handlers stay thin: read and authenticate the request
//! ([`receive`]), then hand over to the normalisers and [`upsert`].
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path};
use crate::{
    auth::{AuthUser, RequireAdmin},
    domain::suggestions::{self, Suggestion},
    domain::tickets::Ticket,
    entity::integration,
    error::{Error, ErrorBody, Result},
    ingest::{
        auth::{self, CreatedIntegration, Integration, NewIntegration, Scope},
        batch::{self, BatchResult},
        sources::{self, freshdesk},
        upsert::{self, Origin},
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(native_webhook))
        .routes(routes!(flexible_webhook))
        .routes(routes!(batch_webhook))
        .routes(routes!(health))
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(delete_integration))
        .routes(routes!(suggested_articles))
}

/// Sender delivery ids that identify a redelivery.
const DELIVERY_HEADERS: [&str; 3] = ["x-atlassian-webhook-identifier", "x-webhook-id", "x-zendesk-webhook-id"];

/// Who sent an inbound request: an integration, or (flexible routes only) a staff member
/// signed in to the web-client, e.g. on its import page.
struct Sender {
    integration: integration::Model,
    actor_id: Option<String>,
}

/// A staff member's access token on a flexible route, as a pseudo-integration with source `import`.
/// Integration secrets have no dots, so a JWT is told apart by its shape.
async fn staff_sender(state: &AppState, headers: &HeaderMap) -> Result<Option<Sender>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim()))
        .filter(|t| t.split('.').count() == 3);
    let Some(token) = token else { return Ok(None) };
    let user = crate::auth::user_from_token(state.verifier(), token).await?;
    if !user.is_staff() {
        return Err(Error::forbidden("only agents and admins may import tickets"));
    }
    let integration = integration::Model {
        id: format!("user:{}", user.id()),
        source: "import".into(),
        name: format!("import by {}", user.user.name),
        secret_hash: String::new(),
        secret_nonce: String::new(),
        created_by: user.id().to_string(),
        created_at: user.user.created_at,
    };
    Ok(Some(Sender { integration, actor_id: Some(user.id().to_string()) }))
}

/// [`receive`] for the flexible routes: integration credentials or a staff access token.
async fn receive_flexible(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(Sender, Bytes)> {
    if let Some(sender) = staff_sender(state, headers).await? {
        let bytes = read_body(state, headers, body).await?;
        take_token(state, &sender.integration.id)?;
        return Ok((sender, bytes));
    }
    let (integration, bytes) = receive(state, headers, body, Scope::Any).await?;
    Ok((Sender { integration, actor_id: None }, bytes))
}

fn take_token(state: &AppState, key: &str) -> Result<()> {
    state
        .ingest_limits
        .check(key, state.config.ingest.rate_per_second)
        .map_err(|retry_after_secs| Error::TooManyRequests { retry_after_secs })
}

/// Reads the body (413 over the cap), authenticates (401) and takes a rate-limit token (429).
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    scope: Scope<'_>,
) -> Result<(integration::Model, Bytes)> {
    let bytes = read_body(state, headers, body).await?;
    let integration = auth::authenticate(state.ingest(), headers, &bytes, scope).await?;
    take_token(state, &integration.id)?;
    Ok((integration, bytes))
}

async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let limit = state.config.ingest.max_body_bytes;
    let too_large = || Error::PayloadTooLarge(format!("the body must be at most {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            too_large()
        } else {
            Error::bad_request(format!("could not read the body: {e}"))
        }
    })
}

fn parse_json(bytes: &[u8], source: &str) -> Result<Value> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) => {
            let repaired = (source == "freshdesk")
                .then(|| std::str::from_utf8(bytes).ok().and_then(freshdesk::repair))
                .flatten()
                .and_then(|fixed| serde_json::from_str(&fixed).ok());
            repaired.ok_or_else(|| Error::bad_request(format!("malformed JSON: {e}")))
        }
    }
}

fn delivery_id(headers: &HeaderMap) -> Option<String> {
    DELIVERY_HEADERS
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok().map(str::trim).filter(|v| !v.is_empty()))
        .map(|v| v.chars().take(200).collect())
}

/// The answer to a sender's test delivery.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    /// The sender's event type, e.g. `pagey.ping`.
    pub acknowledged: String,
}

/// Ingests every normalised item; answers with the first ticket (201 if any was created) and
/// lists every ticket id in `X-Ticket-Ids`.
async fn ingest_all(state: &AppState, origin: Origin<'_>, items: Vec<crate::ingest::Normalised>) -> Result<Response> {
    let (mut first, mut created, mut ids) = (None, false, Vec::new());
    for (i, n) in items.into_iter().enumerate() {
        let delivery_id = origin.delivery_id.as_ref().map(|d| if i == 0 { d.clone() } else { format!("{d}#{i}") });
        let item_origin = Origin { delivery_id, ..origin };
        let outcome = upsert::ingest(state.ingest(), &item_origin, n).await?;
        created |= outcome.created;
        ids.push(outcome.ticket.id.clone());
        first.get_or_insert(outcome.ticket);
    }
    let ticket = first.ok_or_else(|| Error::validation("body", "holds nothing to ingest"))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = (status, Json(ticket)).into_response();
    if let Ok(v) = HeaderValue::from_str(&ids.join(",")) {
        response.headers_mut().insert("x-ticket-ids", v);
    }
    Ok(response)
}

/// Ingest a sender's native webhook payload. Authenticate with `X-Api-Key`/`Authorization: Bearer`
/// or the sender's signature (`X-Hub-Signature-256`, Jira Cloud's `X-Hub-Signature: sha256=…`,
/// `X-Zendesk-Webhook-Signature`, `X-PagerDuty-Signature`). One ticket per external id: a repeat
/// updates it (200). An Alertmanager payload with several alerts makes one ticket per alert: the
/// answer is the first, and `X-Ticket-Ids` lists them all. A sender's test delivery (PagerDuty's
/// `pagey.ping`) is verified like any other and answered 202 with nothing created.
#[utoipa::path(post, path = "/api/v1/tickets/webhook/{source}", tag = "ingest",
    params(("source" = String, Path, description = "servicenow, zendesk, jira, freshdesk, prometheus, datadog, pagerduty or custom")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = Ticket), (status = 200, body = Ticket), (status = 202, body = Acknowledged, description = "a test delivery (PagerDuty `pagey.ping`): nothing created"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn native_webhook(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let source = source.to_ascii_lowercase();
    if !sources::is_known(&source) {
        return Err(Error::NotFound("source"));
    }
    let scope = if source == "custom" { Scope::Any } else { Scope::Source(&source) };
    let (integration, bytes) = receive(&state, &headers, body, scope).await?;
    let payload = parse_json(&bytes, &source)?;
    let items = sources::normalise(&source, &payload)?;
    if items.is_empty() {
        // Only a sender's test delivery normalises to nothing; the sender wants a 2xx.
        let event_type = sources::field(&payload, &["event.event_type"]).unwrap_or_default();
        return Ok((StatusCode::ACCEPTED, Json(Acknowledged { acknowledged: event_type })).into_response());
    }
    let route_source = if source == "custom" { integration.source.as_str() } else { source.as_str() };
    let origin = Origin {
        integration: &integration,
        source: route_source,
        raw: &payload,
        delivery_id: delivery_id(&headers),
        actor_id: None,
    };
    ingest_all(&state, origin, items).await
}

/// Ingest one item with the flexible field mapping (`subject|title`, `description|body`,
/// `category`, `priority`, `customer_email|user_email`, `user_id`, `id`, `platform`, `metadata`).
/// Any integration's key works, as does a staff member's access token (source `import`).
#[utoipa::path(post, path = "/api/integrations/webhook", tag = "ingest", request_body(content = FlexibleItem, content_type = "application/json"),
    responses((status = 201, body = Ticket), (status = 200, body = Ticket), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn flexible_webhook(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response> {
    let (sender, bytes) = receive_flexible(&state, &headers, body).await?;
    let payload = parse_json(&bytes, "custom")?;
    let item = sources::flexible::normalise(&payload)?;
    let (integration, actor_id) = (&sender.integration, sender.actor_id.as_deref());
    let origin = Origin {
        integration,
        source: &integration.source,
        raw: &payload,
        delivery_id: delivery_id(&headers),
        actor_id,
    };
    ingest_all(&state, origin, vec![item]).await
}

/// Ingest many items: a JSON array, or `text/csv` with a header row of the same field names.
/// Any integration's key works, as does a staff member's access token (the web-client's import page).
/// Good items are kept; each failure is reported in `results`. More items than the configured
/// maximum (default 500) is a 413.
#[utoipa::path(post, path = "/api/integrations/webhook/batch", tag = "ingest",
    request_body(content = Vec<serde_json::Value>, description = "Items with the flexible fields; an item that is not a usable object is reported as failed in `results`", content_type = "application/json"),
    responses((status = 200, body = BatchResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn batch_webhook(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<BatchResult>> {
    let (sender, bytes) = receive_flexible(&state, &headers, body).await?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/csv"));
    let items = batch::items(&bytes, csv, state.config.ingest.batch_max_items)?;
    let (integration, actor_id) = (&sender.integration, sender.actor_id.as_deref());
    let origin = Origin { integration, source: &integration.source, raw: &Value::Null, delivery_id: None, actor_id };
    Ok(Json(batch::run(state.ingest(), &origin, items).await))
}

/// The inbound endpoint's health and what it accepts.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IngestHealth {
    /// `healthy` whenever the server answers.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Which endpoint this is.
    #[schema(example = "webhook")]
    pub endpoint: &'static str,
    /// Where it takes flexible items; `/batch` next to it takes many.
    #[schema(example = "/api/integrations/webhook")]
    pub path: &'static str,
    /// The sources of `POST /api/v1/tickets/webhook/{source}`.
    pub supported_platforms: Vec<&'static str>,
    pub features: Vec<&'static str>,
    pub batch_max_items: usize,
    pub max_body_bytes: usize,
}

/// What the inbound endpoint accepts (no credentials needed).
#[utoipa::path(get, path = "/api/integrations/webhook/health", tag = "ingest", responses((status = 200, body = IngestHealth)))]
async fn health(State(state): State<AppState>) -> Json<IngestHealth> {
    Json(IngestHealth {
        status: "healthy",
        endpoint: "webhook",
        path: "/api/integrations/webhook",
        supported_platforms: sources::SOURCES.to_vec(),
        features: vec![
            "flexible_field_mapping",
            "batch_json",
            "batch_csv",
            "native_payloads",
            "signature_verification",
            "idempotent_upsert",
            "delivery_deduplication",
            "rate_limiting",
            "flap_detection",
        ],
        batch_max_items: state.config.ingest.batch_max_items,
        max_body_bytes: state.config.ingest.max_body_bytes,
    })
}

/// Integrations, without their secrets (admin).
#[utoipa::path(get, path = "/api/integrations", tag = "ingest", security(("bearer" = [])),
    responses((status = 200, body = Vec<Integration>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_integrations(State(state): State<AppState>, _admin: RequireAdmin) -> Result<Json<Vec<Integration>>> {
    Ok(Json(auth::list(state.ingest()).await?))
}

/// Open an inbound integration (admin). The answer holds its secret: the only time it is shown.
#[utoipa::path(post, path = "/api/integrations", tag = "ingest", security(("bearer" = [])), request_body = NewIntegration,
    responses((status = 201, body = CreatedIntegration), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_integration(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Json(input): Json<NewIntegration>,
) -> Result<(StatusCode, Json<CreatedIntegration>)> {
    Ok((StatusCode::CREATED, Json(auth::create(state.ingest(), &admin, input).await?)))
}

/// Delete an integration (admin): its secret stops working at once.
#[utoipa::path(delete, path = "/api/integrations/{id}", tag = "ingest", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_integration(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    auth::delete(state.ingest(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Published KB articles ranked by relevance to the ticket, best first (whoever may read the ticket).
#[utoipa::path(get, path = "/api/tickets/{id}/suggested-articles", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Vec<Suggestion>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn suggested_articles(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<Suggestion>>> {
    Ok(Json(suggestions::for_ticket(&state.store, &user, &id).await?))
}

/// The flexible shape's one rule the schema can state: `subject` or `title` must be present
/// (the other fields are free, and anything unknown is kept in metadata).
pub struct FlexibleItem;

impl utoipa::PartialSchema for FlexibleItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        let with = |field: &str| {
            ObjectBuilder::new()
                .property(
                    field,
                    ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).pattern(Some(r"\S")),
                )
                .required(field)
        };
        AnyOfBuilder::new().item(with("subject")).item(with("title")).into()
    }
}

impl utoipa::ToSchema for FlexibleItem {}
