use std::{num::NonZeroU32, sync::Arc};

use axum::{
    Extension,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path, Query};
use crate::{
    auth::AuthUser,
    domain::Page,
    error::{Error, ErrorBody, Result},
    state::AppState,
    webhooks::{
        BuiltIn,
        endpoints::{self, Delivery, DeliveryQuery, Endpoint, EndpointInput, RecoverInput},
        receiver,
    },
};

/// Test sends and manual retries each make an outbound request to a URL the user chose: a
/// token bucket per user keeps one account from turning the server into a request cannon.
/// Automatic retries are not counted.
pub struct ManualSends {
    per_user: DefaultKeyedRateLimiter<String>,
}

impl ManualSends {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self { per_user: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)) }
    }

    fn check(&self, user: &AuthUser) -> Result<()> {
        let clock = governor::clock::DefaultClock::default();
        self.per_user.check_key(&user.id().to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(clock.now());
            Error::TooManyRequests { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })?;
        // Forget idle users now and then so the map stays small.
        if rand::random::<u8>() == 0 {
            self.per_user.retain_recent();
        }
        Ok(())
    }
}

pub fn router(manual_sends_per_minute: u32) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get, put, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(test))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
        .routes(routes!(recover))
        .routes(routes!(receive))
        .layer(Extension(Arc::new(ManualSends::new(manual_sends_per_minute))))
}

/// Your webhook endpoint, with its secret.
#[utoipa::path(get, path = "/api/users/me/webhook", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody)))]
async fn get(State(state): State<AppState>, user: AuthUser) -> Result<Json<Endpoint>> {
    Ok(Json(endpoints::get(&state.webhooks, &user).await?.into()))
}

/// Set your webhook URL (re-enables a disabled endpoint). The secret is made on first use.
#[utoipa::path(put, path = "/api/users/me/webhook", tag = "webhooks", security(("bearer" = [])), request_body = EndpointInput,
    responses((status = 200, body = Endpoint), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<EndpointInput>,
) -> Result<Json<Endpoint>> {
    Ok(Json(endpoints::put(&state.webhooks, &user, input).await?))
}

/// Remove your webhook endpoint.
#[utoipa::path(delete, path = "/api/users/me/webhook", tag = "webhooks", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode> {
    endpoints::delete(&state.webhooks, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret; deliveries carry both signatures for 24 hours.
#[utoipa::path(post, path = "/api/users/me/webhook/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody)))]
async fn rotate_secret(State(state): State<AppState>, user: AuthUser) -> Result<Json<Endpoint>> {
    Ok(Json(endpoints::rotate_secret(&state.webhooks, &user).await?))
}

#[derive(Serialize, ToSchema)]
pub struct TestQueued {
    pub delivery_id: String,
}

/// Send yourself a `webhook_test` notification through the normal pipeline.
#[utoipa::path(post, path = "/api/users/me/webhook/test", tag = "webhooks", security(("bearer" = [])),
    responses((status = 202, body = TestQueued), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<ManualSends>>,
    user: AuthUser,
) -> Result<(StatusCode, Json<TestQueued>)> {
    limits.check(&user)?;
    let delivery_id = endpoints::send_test(&state.webhooks, &user).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { delivery_id })))
}

/// A delivery's state, as the `status` filter accepts it.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Your deliveries, newest first.
// The parameters are spelled out here (not `params(DeliveryQuery)`) so the document states the
// rules `endpoints::list_deliveries` enforces.
#[utoipa::path(get, path = "/api/users/me/webhook/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(
        ("status" = inline(Option<DeliveryStatus>), Query, description = "Only deliveries in this state."),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Items per page, 1–200 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses((status = 200, body = Page<Delivery>), (status = 422, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Page<Delivery>>> {
    Ok(Json(Page::at_position(&state.store.db, endpoints::list_deliveries(&state.webhooks, &user, &q)).await?))
}

/// One delivery, with its payload and every attempt.
#[utoipa::path(get, path = "/api/users/me/webhook/deliveries/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Delivery), (status = 404, body = ErrorBody)))]
async fn get_delivery(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Delivery>> {
    Ok(Json(endpoints::get_delivery(&state.webhooks, &user, &id).await?))
}

/// Send a delivery again now.
#[utoipa::path(post, path = "/api/users/me/webhook/deliveries/{id}/retry", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = Delivery), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn retry_delivery(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<ManualSends>>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>)> {
    limits.check(&user)?;
    Ok((StatusCode::ACCEPTED, Json(endpoints::retry(&state.webhooks, &user, &id).await?)))
}

/// Re-queue every failed delivery since a time (after an outage on your side).
#[utoipa::path(post, path = "/api/users/me/webhook/recover", tag = "webhooks", security(("bearer" = [])), request_body = RecoverInput,
    responses((status = 202, body = Object), (status = 422, body = ErrorBody)))]
async fn recover(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<RecoverInput>,
) -> Result<(StatusCode, Json<Value>)> {
    let n = endpoints::recover(&state.webhooks, &user, input.since).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "requeued": n }))))
}

/// The built-in receiver for relative webhook URLs: verifies the signature and re-emits the
/// payload to its owner's Socket.IO room as `webhook`.
#[utoipa::path(post, path = "/api/notifications/webhooks/notifications", tag = "webhooks",
    request_body(content = Object, description = "a ticketwire webhook payload", content_type = "application/json"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Unauthorized(format!("missing {name} header")))
    };
    let signed = receiver::Signed {
        id: header("webhook-id")?,
        timestamp: header("webhook-timestamp")?,
        signature: header("webhook-signature")?,
        body: &body,
    };
    let (owner, payload) = receiver::verify(&state.store.db, signed).await?;
    state.realtime.show_to_owner(owner, payload).await;
    Ok(Json(json!({ "status": "received" })))
}
