//! Accounts: registration, sign-in, self-service and admin management.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Action, Change, Kind, Page, PageQuery, Tx, validate};
use crate::{
    auth::{AuthUser, Claims, Role, hash_password, verify_password},
    domain::Store,
    entity::{revoked_token, user},
    error::{Error, Result},
};

/// A user as everyone but the database sees it: never a password hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Tokens issued before this (set by every password change) no longer work; `null` until the
    /// first change.
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            role: Role::parse(&m.role).unwrap_or(Role::Customer),
            id: m.id,
            email: m.email,
            name: m.name,
            is_active: m.is_active,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
            tokens_valid_after: m.tokens_valid_after,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 8, max_length = 256, pattern = "^[^\\u0000]*$")]
    pub password: String,
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub name: String,
    /// Admins only; self-registration always makes a customer.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Changes an admin may make to any account.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    #[schema(min_length = 8, max_length = 256, pattern = "^[^\\u0000]*$")]
    pub password: Option<String>,
}

/// Changes anyone may make to their own account.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[schema(min_length = 1, max_length = 200, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub name: Option<String>,
    /// A new password; `current_password` must come with it.
    #[schema(min_length = 8, max_length = 256, pattern = "^[^\\u0000]*$")]
    pub password: Option<String>,
    pub current_password: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UserQuery {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Matches name or email.
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of a previous page.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

/// Creates an account. `actor` is the admin creating it, or `None` for self-registration.
pub async fn create(store: &Store, actor: Option<&AuthUser>, input: NewUser) -> Result<User> {
    let email = validate::email("email", &input.email)?;
    let name = validate::required_text("name", &input.name, 200)?;
    let password = validate::password("password", &input.password)?;
    let role = match actor {
        Some(a) if a.is_admin() => input.role.unwrap_or(Role::Customer),
        _ if input.role.is_some_and(|r| r != Role::Customer) => {
            return Err(Error::forbidden("only admins may create staff accounts"));
        }
        _ => Role::Customer,
    };
    let password_hash = hash_password(password).await?;
    insert(&store.db, &store.hooks, actor.map(|a| a.id()), email, name, password_hash, role).await
}

/// Inserts a user with an already hashed password (also used by `create-admin`).
pub async fn insert(
    db: &sea_orm::DatabaseConnection,
    hooks: &crate::db::HooksHandle,
    actor_id: Option<&str>,
    email: String,
    name: String,
    password_hash: String,
    role: Role,
) -> Result<User> {
    let mut tx = Tx::begin(db, hooks).await?;
    let view = insert_in(&mut tx, actor_id, email, name, password_hash, role).await?;
    tx.commit().await?;
    Ok(view)
}

/// Inserts a user and records the event inside `tx`, which the caller commits.
pub async fn insert_in(
    tx: &mut Tx,
    actor_id: Option<&str>,
    email: String,
    name: String,
    password_hash: String,
    role: Role,
) -> Result<User> {
    let now = super::now();
    let model =
        user::ActiveModel {
            id: Set(super::new_id()),
            email: Set(email),
            name: Set(name),
            password_hash: Set(password_hash),
            role: Set(role.as_str().into()),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
            tokens_valid_after: Set(None),
        }
        .insert(&tx.txn)
        .await
        .map_err(Error::from)
        .map_err(|e| {
            if e.is_unique_violation() { Error::conflict("a user with this email already exists") } else { e }
        })?;
    let view = User::from(model);
    let mut change = Change::new(Kind::User, Action::Created, &view.id, &view).owned_by(&view.id).staff_only(true);
    change.actor_id = actor_id.map(str::to_string);
    tx.record(change).await?;
    Ok(view)
}

/// Checks credentials. The same error for an unknown email, a wrong password and a deactivated
/// account, so the answer does not tell which accounts exist.
pub async fn authenticate(store: &Store, email: &str, password: &str) -> Result<User> {
    let invalid = || Error::Unauthorized("invalid email or password".into());
    let email = email.trim().to_lowercase();
    // No stored email holds a NUL (and PostgreSQL cannot even compare one): unknown, not a 500.
    let found = if email.contains('\0') {
        None
    } else {
        user::Entity::find().filter(user::Column::Email.eq(email)).one(&store.db).await?
    };
    // Verify against a dummy hash when the user is unknown, so timing does not tell either.
    let hash = found.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| {
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wT0eH9GZ1J4lT8dYh3xBxw6xk2Zb2kq7sQ8mE2xJ0cM".into()
    });
    let ok = verify_password(password.to_string(), hash).await;
    match found {
        Some(u) if ok && u.is_active => Ok(u.into()),
        _ => Err(invalid()),
    }
}

pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<user::Model> {
    user::Entity::find_by_id(id.to_string()).one(db).await?.ok_or(Error::NotFound("user"))
}

pub async fn list(store: &Store, q: &UserQuery) -> Result<Page<User>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let limit = page.limit()?;
    let mut query = user::Entity::find().order_by_desc(user::Column::Id);
    if let Some(cursor) = page.cursor()? {
        query = query.filter(user::Column::Id.lt(cursor));
    }
    if let Some(role) = q.role {
        query = query.filter(user::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = q.is_active {
        query = query.filter(user::Column::IsActive.eq(active));
    }
    if let Some(text) = q.q.as_deref().filter(|t| !t.trim().is_empty()) {
        let pattern = super::tickets::like_pattern(text);
        query = query.filter(
            sea_orm::Condition::any()
                .add(super::tickets::lower_like(user::Column::Name, &pattern))
                .add(super::tickets::lower_like(user::Column::Email, &pattern)),
        );
    }
    let rows = query.limit(limit + 1).all(&store.db).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone(), User::from))
}

/// Applies an admin's changes. Deactivating or changing a role takes effect on the next request
/// and closes the user's live connections (through the user event).
pub async fn update(
    store: &Store,
    actor: &AuthUser,
    id: &str,
    patch: UserPatch,
    if_match: Option<i64>,
) -> Result<User> {
    let tx = Tx::begin(&store.db, &store.hooks).await?;
    let current = get(&tx.txn, id).await?;
    check_version(current.version, if_match)?;
    if current.id == actor.id() && (patch.is_active == Some(false) || patch.role.is_some_and(|r| r != Role::Admin)) {
        return Err(Error::conflict("admins cannot deactivate or demote themselves"));
    }
    let mut am: user::ActiveModel = current.clone().into();
    if let Some(email) = &patch.email {
        am.email = Set(validate::email("email", email)?);
    }
    if let Some(name) = &patch.name {
        am.name = Set(validate::required_text("name", name, 200)?);
    }
    if let Some(role) = patch.role {
        am.role = Set(role.as_str().into());
    }
    if let Some(active) = patch.is_active {
        am.is_active = Set(active);
    }
    if let Some(pw) = &patch.password {
        am.password_hash = Set(hash_password(validate::password("password", pw)?).await?);
        am.tokens_valid_after = Set(Some(next_tokens_valid_after(current.tokens_valid_after)));
    }
    save(tx, actor.id(), current, am).await
}

/// Deactivates an account: it keeps its history but can no longer sign in or use a token.
pub async fn deactivate(store: &Store, actor: &AuthUser, id: &str) -> Result<User> {
    let patch = UserPatch { is_active: Some(false), ..Default::default() };
    update(store, actor, id, patch, None).await
}

pub async fn update_profile(store: &Store, me: &AuthUser, patch: ProfilePatch) -> Result<User> {
    let tx = Tx::begin(&store.db, &store.hooks).await?;
    let current = get(&tx.txn, me.id()).await?;
    let mut am: user::ActiveModel = current.clone().into();
    if let Some(name) = &patch.name {
        am.name = Set(validate::required_text("name", name, 200)?);
    }
    if let Some(pw) = &patch.password {
        let new = validate::password("password", pw)?;
        let given = patch.current_password.clone().unwrap_or_default();
        if !verify_password(given, current.password_hash.clone()).await {
            return Err(Error::validation("current_password", "does not match"));
        }
        am.password_hash = Set(hash_password(new).await?);
        am.tokens_valid_after = Set(Some(next_tokens_valid_after(current.tokens_valid_after)));
    }
    save(tx, me.id(), current, am).await
}

/// Where a password change moves `tokens_valid_after`: now, in whole milliseconds (what tokens
/// carry), and always past the previous value, so two changes within one millisecond, or on
/// nodes whose clocks disagree, still end the tokens issued between them.
fn next_tokens_valid_after(previous: Option<DateTime<Utc>>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = Utc::now();
    let now = now.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(now);
    match previous {
        Some(p) if p >= now => p + TimeDelta::milliseconds(1),
        _ => now,
    }
}

/// Ends one token (signing out). Remembered until it would have expired anyway, in the database,
/// so every node refuses it; rows of tokens past their expiry are dropped on the way.
pub async fn sign_out(store: &Store, claims: &Claims) -> Result<()> {
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    let (txn, turn) = super::change::begin_write(&store.db, &store.hooks).await?;
    let written = async {
        revoked_token::Entity::delete_many()
            .filter(revoked_token::Column::ExpiresAt.lt(super::now()))
            .exec(&txn)
            .await?;
        revoked_token::Entity::insert(revoked_token::ActiveModel {
            jti: Set(claims.jti.clone()),
            user_id: Set(claims.sub.clone()),
            expires_at: Set(expires_at),
        })
        .on_conflict(OnConflict::column(revoked_token::Column::Jti).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await?;
        Ok::<_, sea_orm::DbErr>(())
    }
    .await;
    let committed = match written {
        Ok(()) => txn.commit().await,
        Err(e) => Err(e),
    };
    drop(turn);
    // Whatever the outcome, as at any user change: a failed commit may still have happened.
    store.hooks.signed_in().forget(&claims.sub);
    Ok(committed?)
}

async fn save(mut tx: Tx, actor_id: &str, current: user::Model, am: user::ActiveModel) -> Result<User> {
    if !am.is_changed() {
        return Ok(current.into());
    }
    let model = crate::domain::versioned::update::<user::Entity>(&tx.txn, &current.id, current.version, am)
        .await
        .map_err(|e| match e {
            e if e.is_unique_violation() => Error::conflict("a user with this email already exists"),
            e => e,
        })?;
    let view = User::from(model);
    let previous = User::from(current);
    tx.record(
        Change::new(Kind::User, Action::Updated, &view.id, &view)
            .by(actor_id)
            .owned_by(&view.id)
            .staff_only(true)
            .previous(&previous),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Compares an `If-Match` version with the stored one.
pub fn check_version(stored: i64, if_match: Option<i64>) -> Result<()> {
    match if_match {
        Some(v) if v != stored => {
            Err(Error::conflict(format!("version mismatch: you sent {v}, the current version is {stored}")))
        }
        _ => Ok(()),
    }
}
