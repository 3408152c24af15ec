use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{Json, Path};
use crate::{
    auth::AuthUser,
    domain::timeline::{self, TimelineEntry},
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ticket_timeline))
}

/// What changed on a ticket (status, priority, assignee, requester, subject, category), when
/// and by whom, oldest first (staff).
#[utoipa::path(get, path = "/api/tickets/{id}/timeline", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Vec<TimelineEntry>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn ticket_timeline(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<TimelineEntry>>> {
    Ok(Json(timeline::for_ticket(&state.store, &user, &id).await?))
}
