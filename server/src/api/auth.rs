use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{ClientIp, Json};
use crate::{
    auth::{AuthUser, Session},
    domain::users::{self, NewUser, ProfilePatch, User},
    error::{Error, ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
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

pub(super) fn token_for(state: &AppState, user: User) -> Result<TokenResponse> {
    let access_token = state.jwt.issue_valid_after(&user.id, user.role.as_str(), user.tokens_valid_after)?;
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in: state.jwt.ttl_secs, user })
}

/// Your account after a change. When the password changed, every token issued before (the one
/// this request came with included) has stopped working, and a fresh one comes along.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    #[serde(flatten)]
    pub user: User,
    /// Only when the password changed: the token to use from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// `Bearer`, with `access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Seconds until `access_token` expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// Create a customer account and sign in. Limited per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = NewUser,
    responses((status = 201, body = TokenResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "seconds to wait")))))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    if !state.config.allow_registration {
        return Err(Error::forbidden("self-registration is turned off; ask an admin for an account"));
    }
    state.login_limits.check_registration(ip)?;
    let user = users::create(&state.store, None, input).await?;
    Ok((StatusCode::CREATED, Json(token_for(&state, user)?)))
}

/// Sign in with email and password. Attempts are limited per account and client address, per
/// address, and per account from addresses it has not signed in from lately (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "seconds to wait")))))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(c): Json<Credentials>,
) -> Result<Json<TokenResponse>> {
    state.login_limits.check(&c.email, ip)?;
    let user = users::authenticate(&state.store, &c.email, &c.password).await?;
    state.login_limits.signed_in(&c.email, ip);
    Ok(Json(token_for(&state, user)?))
}

/// Sign out: the token this request carries stops working at once, on every node. Other tokens
/// of the account are unaffected (changing the password ends them all).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, session: Session) -> Result<StatusCode> {
    users::sign_out(&state.store, &session.claims).await?;
    state.realtime.disconnect_token(&session.claims.jti).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(user: AuthUser) -> Json<User> {
    Json(user.user.into())
}

/// Change your name or password (the current password must come with a new one). A new password
/// ends every token issued before it, this request's included; the answer carries a fresh one.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = ProfileResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<ProfileResponse>> {
    let password_changed = patch.password.is_some();
    let user = users::update_profile(&state.store, &user, patch).await?;
    if !password_changed {
        return Ok(Json(ProfileResponse { user, access_token: None, token_type: None, expires_in: None }));
    }
    let fresh = token_for(&state, user)?;
    Ok(Json(ProfileResponse {
        user: fresh.user,
        access_token: Some(fresh.access_token),
        token_type: Some(fresh.token_type),
        expires_in: Some(fresh.expires_in),
    }))
}
