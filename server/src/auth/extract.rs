use axum::{extract::FromRequestParts, http::request::Parts};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, Query},
};

use super::{Claims, Role, jwt::valid_after_millis};
use crate::{
    entity::{revoked_token, user},
    error::{Error, Result},
    state::AppState,
};

/// The signed-in, active user. A handler taking it has checked the token and that the account
/// still exists and is active.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user: user::Model,
    pub role: Role,
}

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.user.id
    }

    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The signed-in user and the token they sent, for what acts on the token itself (signing out).
#[derive(Clone, Debug)]
pub struct Session {
    pub user: AuthUser,
    pub claims: Claims,
}

/// The signed-in user if there is a valid token; anonymous otherwise (but a bad token is an error).
pub struct MaybeUser(pub Option<AuthUser>);

/// An admin or an agent.
pub struct RequireStaff(pub AuthUser);

/// An admin.
pub struct RequireAdmin(pub AuthUser);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized() -> Error {
    Error::Unauthorized("invalid or expired token".into())
}

/// Resolves a raw token to an active user; shared by HTTP and Socket.IO.
pub async fn user_from_token(state: &AppState, token: &str) -> Result<AuthUser> {
    Ok(session_from_token(state, token).await?.user)
}

/// Resolves a raw token to an active user and the token's claims (its `jti` and `exp`).
pub async fn session_from_token(state: &AppState, token: &str) -> Result<Session> {
    let claims = state.jwt.verify(token).ok_or_else(unauthorized)?;
    let user = user_for_claims(state, &claims).await?;
    Ok(Session { user, claims })
}

/// Whether a token verified earlier (an open socket's) would still be accepted now: not expired,
/// not signed out of, not older than the account's last password change, the account active.
/// `Err` only when that cannot be told (the database is unreachable).
pub async fn token_still_valid(state: &AppState, claims: &Claims) -> Result<bool> {
    if claims.exp <= chrono::Utc::now().timestamp() {
        return Ok(false);
    }
    match user_for_claims(state, claims).await {
        Ok(_) => Ok(true),
        Err(Error::Unauthorized(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn user_for_claims(state: &AppState, claims: &Claims) -> Result<AuthUser> {
    // Remembered where it can be (see `SignedInUsers`). Read with `.all()`, not `.one()`: that
    // adds `LIMIT ?`, and SQLite re-prepares a statement whenever a parameter its planner looked
    // at is bound again, a LIMIT's included. A primary-key lookup needs no limit. The revocation
    // check rides along in the same statement: one round trip per request.
    let signed_in = state.hooks.signed_in();
    let user = match signed_in.get(&claims.sub, &claims.jti) {
        Some(user) => user,
        None => {
            let era = signed_in.era();
            let revoked = Query::select()
                .expr(Expr::val(1))
                .from(revoked_token::Entity)
                .and_where(revoked_token::Column::Jti.eq(claims.jti.as_str()))
                .take();
            let user = user::Entity::find_by_id(claims.sub.clone())
                .filter(Expr::not_exists(revoked))
                .all(&state.db)
                .await?
                .into_iter()
                .next()
                .ok_or_else(unauthorized)?;
            signed_in.remember(user.clone(), &claims.jti, era);
            user
        }
    };
    if !user.is_active || claims.tokens_valid_after < valid_after_millis(user.tokens_valid_after) {
        return Err(unauthorized());
    }
    let role = Role::parse(&user.role).ok_or_else(unauthorized)?;
    Ok(AuthUser { user, role })
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = bearer(parts)
            .ok_or_else(|| Error::Unauthorized("missing `Authorization: Bearer <token>` header".into()))?;
        session_from_token(state, token).await
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = bearer(parts)
            .ok_or_else(|| Error::Unauthorized("missing `Authorization: Bearer <token>` header".into()))?;
        user_from_token(state, token).await
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        match bearer(parts) {
            None => Ok(MaybeUser(None)),
            Some(token) => Ok(MaybeUser(Some(user_from_token(state, token).await?))),
        }
    }
}

impl FromRequestParts<AppState> for RequireStaff {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_staff() {
            return Err(Error::forbidden("only agents and admins may do this"));
        }
        Ok(RequireStaff(user))
    }
}

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(Error::forbidden("only admins may do this"));
        }
        Ok(RequireAdmin(user))
    }
}
