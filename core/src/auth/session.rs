use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, Query},
};

use super::{Claims, JwtKeys, Role, SignedInUsers, jwt::valid_after_millis};
use crate::{
    entity::{revoked_token, user},
    error::{Error, Result},
};

/// What telling who holds a token takes: the keys that sign tokens, the users table, and the
/// users remembered from earlier requests. Shared by HTTP and Socket.IO.
#[derive(Clone, Copy)]
pub struct Verifier<'a> {
    pub keys: &'a JwtKeys,
    pub db: &'a DatabaseConnection,
    pub signed_in: &'a SignedInUsers,
}

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

fn unauthorized() -> Error {
    Error::Unauthorized("invalid or expired token".into())
}

/// Resolves a raw token to an active user; shared by HTTP and Socket.IO.
pub async fn user_from_token(v: Verifier<'_>, token: &str) -> Result<AuthUser> {
    Ok(session_from_token(v, token).await?.user)
}

/// Resolves a raw token to an active user and the token's claims (its `jti` and `exp`).
pub async fn session_from_token(v: Verifier<'_>, token: &str) -> Result<Session> {
    let claims = v.keys.verify(token).ok_or_else(unauthorized)?;
    let user = user_for_claims(v, &claims).await?;
    Ok(Session { user, claims })
}

async fn user_for_claims(v: Verifier<'_>, claims: &Claims) -> Result<AuthUser> {
    // Remembered where it can be (see `SignedInUsers`). Read with `.all()`, not `.one()`: that
    // adds `LIMIT ?`, and SQLite re-prepares a statement whenever a parameter its planner looked
    // at is bound again, a LIMIT's included. A primary-key lookup needs no limit. The revocation
    // check rides along in the same statement: one round trip per request.
    let signed_in = v.signed_in;
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
                .all(v.db)
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
