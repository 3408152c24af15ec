//! Ending tokens before they expire: signing out ends the token it is sent with, a password
//! change ends every older token of the account; on every node, and on a single SQLite node
//! despite the signed-in users it remembers between requests.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use common::{Actor, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

fn with_token(who: &Actor, token: &str) -> Actor {
    Actor { token: token.to_string(), ..who.clone() }
}

async fn logout(app: &TestApp, token: &str, expect: u16) -> Value {
    app.call(Method::POST, "/api/auth/logout", Some(token), None, expect).await
}

async fn count_revoked(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(app.config.database_url()).await.unwrap();
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM revoked_tokens"))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    db.close().await.ok();
    n
}

#[tokio::test]
async fn signing_out_ends_this_token_only() {
    let app = common::spawn_app().await;
    let phone = app.customer("Cleo").await;
    let laptop = app.login(&phone.email, "password123").await;
    // Both seen once, so a single node remembers the account for both.
    app.get("/api/users/me", &phone, 200).await;
    app.get("/api/users/me", &laptop, 200).await;

    let body = logout(&app, &phone.token, 204).await;
    assert!(body.is_null(), "no body: {body}");
    // The other device first: the account is read and remembered again, which must not let the
    // signed-out token through with it.
    app.get("/api/users/me", &laptop, 200).await;
    let e = app.get("/api/users/me", &phone, 401).await;
    assert_eq!(e["code"], "unauthorized");
    app.post("/api/tickets", &phone, json!({ "subject": "s", "description": "d" }), 401).await;
    logout(&app, &phone.token, 401).await;
    // The other device stays signed in, and may sign out in turn.
    app.get("/api/users/me", &laptop, 200).await;
    app.ticket(&laptop, "still here").await;
    logout(&app, &laptop.token, 204).await;
    app.get("/api/users/me", &laptop, 401).await;
    // Signing in again works as before.
    let again = app.login(&phone.email, "password123").await;
    app.get("/api/users/me", &again, 200).await;

    let e = app.call(Method::POST, "/api/auth/logout", None, None, 401).await;
    assert_eq!(e["code"], "unauthorized");
    app.call(Method::POST, "/api/auth/logout", Some("not.a.token"), None, 401).await;
}

#[tokio::test]
async fn a_password_change_ends_every_older_token_and_hands_out_a_fresh_one() {
    let app = common::spawn_app().await;
    let phone = app.customer("Cleo").await;
    let laptop = app.login(&phone.email, "password123").await;
    app.get("/api/users/me", &phone, 200).await;
    app.get("/api/users/me", &laptop, 200).await;
    let before = app.get("/api/users/me", &phone, 200).await;
    assert!(before["tokens_valid_after"].is_null());

    let v = app
        .patch("/api/users/me", &phone, json!({ "password": "a-new-password", "current_password": "password123" }), 200)
        .await;
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(v["id"], phone.id.as_str());
    assert!(v["tokens_valid_after"].is_string());
    let fresh = with_token(&phone, v["access_token"].as_str().unwrap());

    // The very next request with either old token is refused, the fresh one is not.
    app.get("/api/users/me", &phone, 401).await;
    app.get("/api/users/me", &laptop, 401).await;
    let me = app.get("/api/users/me", &fresh, 200).await;
    assert_eq!(me["tokens_valid_after"], v["tokens_valid_after"]);
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": phone.email, "password": "password123"})),
        401,
    )
    .await;
    let signed_in = app.login(&phone.email, "a-new-password").await;
    app.get("/api/users/me", &signed_in, 200).await;

    // A name change leaves tokens alone.
    app.patch("/api/users/me", &fresh, json!({ "name": "Cleo P." }), 200).await;
    app.get("/api/users/me", &fresh, 200).await;
    app.get("/api/users/me", &signed_in, 200).await;

    // The change is a `user` `updated` event whose `tokens_valid_after` moved: what tells every
    // node's live connections.
    let events = app.get("/api/events?limit=500", &app.admin, 200).await;
    let moved = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "user" && e["action"] == "updated" && e["entity_id"] == phone.id.as_str())
        .filter(|e| e["data"]["tokens_valid_after"] == v["tokens_valid_after"])
        .count();
    assert!(moved >= 1, "no user event carries the new tokens_valid_after: {events}");
}

#[tokio::test]
async fn an_admin_setting_a_password_ends_that_users_tokens() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    app.get("/api/users/me", &agent, 200).await;
    app.patch(&format!("/api/users/{}", agent.id), &app.admin, json!({ "password": "reset-by-admin" }), 200).await;
    app.get("/api/users/me", &agent, 401).await;
    app.get("/api/users/me", &app.admin, 200).await;
    let agent = app.login(&agent.email, "reset-by-admin").await;
    app.get("/api/users/me", &agent, 200).await;
    // Any other change an admin makes leaves tokens alone.
    app.patch(&format!("/api/users/{}", agent.id), &app.admin, json!({ "name": "Agnes B." }), 200).await;
    app.get("/api/users/me", &agent, 200).await;
}

#[tokio::test]
async fn two_password_changes_in_quick_succession_each_end_the_tokens_before_them() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let v = app
        .patch("/api/users/me", &c, json!({ "password": "second-pass", "current_password": "password123" }), 200)
        .await;
    let second = with_token(&c, v["access_token"].as_str().unwrap());
    let v = app
        .patch("/api/users/me", &second, json!({ "password": "third-pass", "current_password": "second-pass" }), 200)
        .await;
    let third = with_token(&c, v["access_token"].as_str().unwrap());
    app.get("/api/users/me", &second, 401).await;
    app.get("/api/users/me", &third, 200).await;
}

#[tokio::test]
async fn signed_out_tokens_are_forgotten_once_they_expire() {
    let app = common::spawn_with(|c| c.token_ttl_secs = 1).await;
    let c = app.customer("Cleo").await;
    logout(&app, &c.token, 204).await;
    assert_eq!(count_revoked(&app).await, 1);
    // `exp` is whole seconds: two seconds on, the first token has expired for certain.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let again = app.login(&c.email, "password123").await;
    logout(&app, &again.token, 204).await;
    assert_eq!(count_revoked(&app).await, 1, "the expired token's row was dropped");
}

/// Several nodes over one PostgreSQL database: a token ended through one is refused by the other
/// on its very next request. (On SQLite a database has one node.)
#[tokio::test]
async fn tokens_ended_on_one_node_are_refused_by_another() {
    if std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()).is_none() {
        eprintln!("skipped: needs TEST_DATABASE_URL (PostgreSQL) for two nodes over one database");
        return;
    }
    let a = common::spawn_app().await;
    let b = common::spawn_config(a.config.clone()).await;
    let phone = a.customer("Cleo").await;
    let laptop = a.login(&phone.email, "password123").await;
    b.get("/api/users/me", &phone, 200).await;
    b.get("/api/users/me", &laptop, 200).await;

    logout(&a, &phone.token, 204).await;
    b.get("/api/users/me", &phone, 401).await;
    b.get("/api/users/me", &laptop, 200).await;

    let v = a
        .patch(
            "/api/users/me",
            &laptop,
            json!({ "password": "a-new-password", "current_password": "password123" }),
            200,
        )
        .await;
    b.get("/api/users/me", &laptop, 401).await;
    b.get("/api/users/me", &with_token(&laptop, v["access_token"].as_str().unwrap()), 200).await;
}

#[tokio::test]
async fn a_signed_out_token_stays_refused_after_a_restart() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let other = app.login(&c.email, "password123").await;
    logout(&app, &c.token, 204).await;
    let app = common::spawn_config(app.stop().await).await;
    app.get("/api/users/me", &other, 200).await;
    app.get("/api/users/me", &c, 401).await;
}
