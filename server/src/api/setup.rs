//! First run: creating the first admin from the link the server printed.
use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::{TokenResponse, token_for},
    extract::Json,
};
use crate::{
    domain::setup::{self, FirstAdmin, SetupStatus},
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status, create_admin))
}

/// Whether the first admin is still to be created (then the server's log holds a setup link).
#[utoipa::path(get, path = "/api/setup", tag = "auth", responses((status = 200, body = SetupStatus)))]
async fn status(State(state): State<AppState>) -> Result<Json<SetupStatus>> {
    Ok(Json(SetupStatus { needed: setup::needed(&state.store.db).await? }))
}

/// Create the first admin with the setup link's token, and sign in as them. Refused (409) once
/// an admin exists; a wrong token is 403.
#[utoipa::path(post, path = "/api/setup", tag = "auth", request_body = FirstAdmin,
    responses((status = 201, body = TokenResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_admin(
    State(state): State<AppState>,
    Json(input): Json<FirstAdmin>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let admin = setup::create_first_admin(&state.store, state.jwt.setup_token(), input).await?;
    Ok((StatusCode::CREATED, Json(token_for(&state, admin)?)))
}
