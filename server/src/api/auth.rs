use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{ClientIp, Json};
use crate::{
    auth::AuthUser,
    domain::users::{self, NewUser, ProfilePatch, User},
    error::{Error, ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register)).routes(routes!(login)).routes(routes!(me, update_me))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user: User,
}

fn token_for(state: &AppState, user: User) -> Result<TokenResponse> {
    let access_token = state.jwt.issue(&user.id, user.role.as_str())?;
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in: state.jwt.ttl_secs, user })
}

/// Create a customer account and sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = NewUser,
    responses((status = 201, body = TokenResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    if !state.config.allow_registration {
        return Err(Error::forbidden("self-registration is turned off; ask an admin for an account"));
    }
    let user = users::create(&state, None, input).await?;
    Ok((StatusCode::CREATED, Json(token_for(&state, user)?)))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(c): Json<Credentials>,
) -> Result<Json<TokenResponse>> {
    state.login_limits.check(&c.email, ip)?;
    let user = users::authenticate(&state, &c.email, &c.password).await?;
    Ok(Json(token_for(&state, user)?))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(user: AuthUser) -> Json<User> {
    Json(user.user.into())
}

/// Change your name or password (the current password must come with a new one).
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<User>> {
    Ok(Json(users::update_profile(&state, &user, patch).await?))
}
