use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path, Query};
use crate::{
    auth::AuthUser,
    domain::{
        Page,
        search::TicketHit,
        tickets::{self, NewTicket, Ticket, TicketPatch, TicketQuery},
    },
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

/// Tickets the caller may see, newest first; with `q`, the matches best first. Customers see their own.
#[utoipa::path(get, path = "/api/tickets", tag = "tickets", security(("bearer" = [])), params(TicketQuery),
    responses((status = 200, body = Page<TicketHit>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(mut q): Query<TicketQuery>,
) -> Result<Json<Page<TicketHit>>> {
    number_search(&mut q);
    let mut page = Page::at_position(&state.store.db, tickets::list(&state.store, &user, &q)).await?;
    tickets::name_requesters(&state.store.db, page.items.iter_mut().map(|h| &mut h.ticket)).await?;
    Ok(Json(page))
}

/// `q=#1042` asks for ticket 1042, not for the text.
fn number_search(q: &mut TicketQuery) {
    if let Some(n) = q.q.as_deref().filter(|t| t.trim_start().starts_with('#')).and_then(tickets::numbers::parse) {
        q.number = Some(n);
        q.q = None;
    }
}

/// Open a ticket (`subject` may also be sent as `title`).
#[utoipa::path(post, path = "/api/tickets", tag = "tickets", security(("bearer" = [])), request_body = NewTicket,
    responses((status = 201, body = Ticket), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>)> {
    Ok((StatusCode::CREATED, Json(tickets::create(&state.store, &user, input).await?)))
}

/// One ticket.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Ticket>> {
    let mut ticket = Ticket::from(tickets::readable(&state.store.db, &user, &id).await?).seen_by(&user);
    tickets::name_requesters(&state.store.db, std::slice::from_mut(&mut ticket)).await?;
    Ok(Json(ticket))
}

/// Change a ticket. Send `If-Match: <version>` to refuse a stale write with 409.
#[utoipa::path(patch, path = "/api/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)), request_body = TicketPatch,
    responses((status = 200, body = Ticket), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<TicketPatch>,
) -> Result<Json<Ticket>> {
    Ok(Json(tickets::update(&state.store, &user, &id, patch, v).await?))
}

/// Delete a ticket with its comments and attachments (staff).
#[utoipa::path(delete, path = "/api/tickets/{id}", tag = "tickets", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode> {
    tickets::delete(&state.store, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
