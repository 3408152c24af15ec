use axum::{
    extract::State,
    http::{HeaderName, HeaderValue},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path, Query};
use crate::{
    auth::AuthUser,
    domain::{
        Page,
        events::{self, Event, EventQuery},
        notifications::{self, Notification, NotificationQuery, UnreadCount},
        pagination::log_position,
    },
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
        .routes(routes!(list_events))
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    pub count: u64,
}

/// Your notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", security(("bearer" = [])), params(NotificationQuery),
    responses((status = 200, body = Page<Notification>), (status = 401, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<NotificationQuery>,
) -> Result<Json<Page<Notification>>> {
    Ok(Json(Page::at_position(&state.store.db, notifications::list(&state.store, &user, &q)).await?))
}

/// How many of your notifications are unread, up to 10,000 (`more`: there are more than that).
#[utoipa::path(get, path = "/api/notifications/unread-count", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody)))]
async fn unread_count(State(state): State<AppState>, user: AuthUser) -> Result<Json<UnreadCount>> {
    Ok(Json(notifications::unread_count(&state.store, &user).await?))
}

/// Mark one notification read.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Notification), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Notification>> {
    Ok(Json(notifications::mark_read(&state.store, &user, &id).await?))
}

/// Mark all your notifications read; answers how many changed.
#[utoipa::path(post, path = "/api/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Count), (status = 401, body = ErrorBody)))]
async fn mark_all_read(State(state): State<AppState>, user: AuthUser) -> Result<Json<Count>> {
    Ok(Json(Count { count: notifications::mark_all_read(&state.store, &user).await? }))
}

/// Events you may see, oldest first, after `after` (an `event_id`). The `log-position` header is
/// the log position read before them: after a page shorter than `limit`, every event you may see
/// up to it was listed, so the next `after` may be the larger of it and the last `event_id`.
#[utoipa::path(get, path = "/api/events", tag = "events", security(("bearer" = [])), params(EventQuery),
    responses(
        (status = 200, body = Vec<Event>, headers(("log-position" = i64, description = "The log position read before the events."))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<EventQuery>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<Vec<Event>>)> {
    let position = log_position(&state.store.db).await?;
    let events = events::list(&state.store, &user, &q).await?;
    Ok(([(HeaderName::from_static("log-position"), HeaderValue::from(position))], Json(events)))
}
