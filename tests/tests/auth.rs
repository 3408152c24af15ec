//! Registration, sign-in, tokens and account lifecycle, over HTTP.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn register_login_and_me() {
    let app = common::spawn_app().await;
    let v = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "Cleo@Example.com", "password": "password123", "name": "Cleo"})),
            201,
        )
        .await;
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["user"]["role"], "customer");
    assert_eq!(v["user"]["email"], "cleo@example.com");
    assert!(v["user"].get("password_hash").is_none());
    let me = app.login("cleo@example.com", "password123").await;
    let got = app.get("/api/users/me", &me, 200).await;
    assert_eq!(got["name"], "Cleo");

    // Duplicate email, bad input, wrong password.
    app.call(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"email": "cleo@example.com", "password": "password123", "name": "X"})),
        409,
    )
    .await;
    let e = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "nope", "password": "password123", "name": "X"})),
            422,
        )
        .await;
    assert_eq!(e["code"], "validation");
    assert!(e["detail"].as_str().unwrap().contains("email"));
    app.call(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"email": "a@b.io", "password": "short", "name": "X"})),
        422,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"email": "a@b.io", "password": "password123", "name": "X", "role": "admin"})),
        403,
    )
    .await;
    let e = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "cleo@example.com", "password": "wrong-password"})),
            401,
        )
        .await;
    assert_eq!(e["code"], "unauthorized");
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": "nobody@example.com", "password": "wrong-password"})),
        401,
    )
    .await;
}

#[tokio::test]
async fn malformed_json_and_missing_tokens_get_clear_errors() {
    let app = common::spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");

    let e = app.call(Method::GET, "/api/users/me", None, None, 401).await;
    assert_eq!(e["code"], "unauthorized");
    let e = app.call(Method::GET, "/api/users/me", Some("garbage.token.here"), None, 401).await;
    assert_eq!(e["code"], "unauthorized");
    let e = app.call(Method::GET, "/api/nothing-here", None, None, 404).await;
    assert_eq!(e["code"], "not_found");
}

#[tokio::test]
async fn registration_can_be_turned_off() {
    let app = common::spawn_with(|c| c.allow_registration = false).await;
    app.call(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"email": "a@b.io", "password": "password123", "name": "A"})),
        403,
    )
    .await;
}

#[tokio::test]
async fn deactivated_user_is_locked_out_and_old_token_dies() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    app.get("/api/users/me", &c, 200).await;
    let u = app.delete(&format!("/api/users/{}", c.id), &app.admin, 200).await;
    assert_eq!(u["is_active"], false);
    app.get("/api/users/me", &c, 401).await;
    app.call(Method::POST, "/api/auth/login", None, Some(json!({"email": c.email, "password": "password123"})), 401)
        .await;
    // History is kept: the admin still sees the account.
    let got = app.get(&format!("/api/users/{}", c.id), &app.admin, 200).await;
    assert_eq!(got["is_active"], false);
    // An admin cannot lock themselves out.
    app.delete(&format!("/api/users/{}", app.admin.id), &app.admin, 409).await;
}

/// On a single node the server remembers signed-in accounts between requests; a change to one
/// must still show on the very next request, whoever made it.
#[tokio::test]
async fn a_changed_account_is_seen_by_the_very_next_request() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let ticket = json!({ "subject": "Phoned in", "description": "x", "source": "phone" });
    app.post("/api/tickets", &agent, ticket.clone(), 201).await;
    assert_eq!(app.get("/api/users/me", &agent, 200).await["role"], "agent");

    app.patch(&format!("/api/users/{}", agent.id), &app.admin, json!({ "role": "customer" }), 200).await;
    assert_eq!(app.get("/api/users/me", &agent, 200).await["role"], "customer");
    app.post("/api/tickets", &agent, ticket, 403).await;

    app.patch("/api/users/me", &agent, json!({ "name": "Agnes B." }), 200).await;
    assert_eq!(app.get("/api/users/me", &agent, 200).await["name"], "Agnes B.");
}

#[tokio::test]
async fn profile_updates_require_the_current_password() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let v = app.patch("/api/users/me", &c, json!({"name": "Cleo P."}), 200).await;
    assert_eq!(v["name"], "Cleo P.");
    assert_eq!(v["version"], 2);
    app.patch("/api/users/me", &c, json!({"password": "new-password-1"}), 422).await;
    app.patch("/api/users/me", &c, json!({"password": "new-password-1", "current_password": "wrong-one"}), 422).await;
    let v = app
        .patch("/api/users/me", &c, json!({"password": "new-password-1", "current_password": "password123"}), 200)
        .await;
    assert!(v["access_token"].is_string(), "a new password comes with a fresh token: {v}");
    let c = app.login(&c.email, "new-password-1").await;
    // Customers cannot change their role through their profile.
    app.patch("/api/users/me", &c, json!({"role": "admin"}), 422).await;
}

/// A client whose requests come from `ip` (any 127.0.0.0/8 address reaches the server on
/// 127.0.0.1), as a separate machine's would.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn login_from(app: &common::TestApp, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
    client.post(app.url("/api/auth/login")).json(&json!({"email": email, "password": password})).send().await.unwrap()
}

/// The server reads the client's address from the connection (it honours no forwarded header),
/// so the two "machines" here are two loopback source addresses.
#[tokio::test]
async fn a_strangers_guesses_do_not_lock_the_owner_out_from_elsewhere() {
    let app = common::spawn_with(|c| c.login_attempts_per_minute = 3).await;
    let alice = app.customer("Alice").await;
    let (stranger, owner) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    for _ in 0..3 {
        assert_eq!(login_from(&app, &stranger, &alice.email, "guess-guess").await.status(), 401);
    }
    for _ in 0..20 {
        let resp = login_from(&app, &stranger, &alice.email, "guess-guess").await;
        assert_eq!(resp.status(), 429);
        assert!(resp.headers().contains_key("retry-after"));
    }
    let resp = login_from(&app, &stranger, &alice.email, "password123").await;
    assert_eq!(resp.status(), 429, "the guessing address waits, even with the right password");

    let resp = login_from(&app, &owner, &alice.email, "password123").await;
    assert_eq!(resp.status(), 200, "the owner signs in from another address");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["id"], alice.id.as_str());
    // And keeps their own budget there.
    assert_eq!(login_from(&app, &owner, &alice.email, "password123").await.status(), 200);
}

#[tokio::test]
async fn registration_is_throttled_per_client_address() {
    let app = common::spawn_with(|c| c.registrations_per_hour_per_ip = 2).await;
    let (here, elsewhere) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let register = |client: &reqwest::Client, email: &str| {
        client
            .post(app.url("/api/auth/register"))
            .json(&json!({"email": email, "password": "password123", "name": "New"}))
            .send()
    };
    assert_eq!(register(&here, "one@example.com").await.unwrap().status(), 201);
    // A refused attempt counts too: each costs a hash, and a 409 tells an email exists.
    assert_eq!(register(&here, "one@example.com").await.unwrap().status(), 409);
    let resp = register(&here, "two@example.com").await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "retry-after {retry}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].is_string());
    assert_eq!(register(&elsewhere, "two@example.com").await.unwrap().status(), 201);
    // Signing in is a separate budget.
    assert_eq!(login_from(&app, &here, "one@example.com", "password123").await.status(), 200);
}

#[tokio::test]
async fn admin_manages_users_with_pagination_and_conflicts() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    // Agents look people up, but only admins manage accounts (see helpdesk.rs for what agents get).
    let looked_up = app.get("/api/users", &agent, 200).await;
    assert!(looked_up["items"][0].get("created_at").is_none(), "{looked_up}");
    for i in 0..5 {
        app.customer(&format!("Cust {i}")).await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/users?limit=2&cursor={c}"),
            None => "/api/users?limit=2".to_string(),
        };
        let page = app.get(&path, &app.admin, 200).await;
        for u in page["items"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_string()), "duplicate across pages");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7); // admin + agent + 5 customers
    let u = app.patch(&format!("/api/users/{}", agent.id), &app.admin, json!({"role": "customer"}), 200).await;
    assert_eq!(u["role"], "customer");
    // Stale If-Match → 409, and nothing changed.
    let resp = app
        .client
        .patch(app.url(&format!("/api/users/{}", agent.id)))
        .bearer_auth(&app.admin.token)
        .header("if-match", "1")
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let got = app.get(&format!("/api/users/{}", agent.id), &app.admin, 200).await;
    assert_eq!(got["name"], "Agnes");
    app.patch(&format!("/api/users/{}", agent.id), &app.admin, json!({"email": app.admin.email}), 409).await;
    app.get("/api/users/00000000-0000-0000-0000-000000000000", &app.admin, 404).await;
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account() {
    let app = common::spawn_with(|c| c.login_attempts_per_minute = 3).await;
    let c = app.customer("Cleo").await; // one successful login used
    for _ in 0..2 {
        app.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": c.email, "password": "wrong-password"})),
            401,
        )
        .await;
    }
    let resp = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": c.email, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429, "even the right password waits once the bucket is empty");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another account is not affected.
    app.login(&app.admin.email.clone(), "admin-password").await;
}
