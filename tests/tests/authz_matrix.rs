//! Authorization on REST, as one table: every route of the OpenAPI document × nine identities
//! (anonymous, customer A, customer B, agent, admin, a deactivated user, an expired token, a token
//! signed with another key, a token with `alg: none`) over a seeded helpdesk. Each cell is the exact
//! status expected, and no response body may carry what that identity may not see: A's internal
//! note, the other customer's subject, a KB draft, another user's webhook secret.
//! The table must cover every operation of `/api/openapi.json`: a new route without a row fails.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use common::{Actor, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use ticketwire::auth::JwtKeys;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Anonymous,
    Expired,
    OtherKey,
    AlgNone,
    Deactivated,
    CustomerB,
    CustomerA,
    Agent,
    Admin,
}

const WHO: [Who; 9] = [
    Who::Anonymous,
    Who::Expired,
    Who::OtherKey,
    Who::AlgNone,
    Who::Deactivated,
    Who::CustomerB,
    Who::CustomerA,
    Who::Agent,
    Who::Admin,
];

/// Text that only some may read; each is unique so a leak anywhere shows.
const A_SUBJECT: &str = "a-subject-3b7e printer of customer A";
const B_SUBJECT: &str = "b-subject-52af private matter of customer B";
const INTERNAL: &str = "internal-note-7c1e staff only: customer A is on a watch list";
const DRAFT: &str = "draft-title-91d0 unreleased outage postmortem";

enum Body {
    None,
    /// JSON text; `{uniq}` becomes a fresh unique string, `{a}` customer A's id.
    Json(&'static str),
    /// A multipart form with one `file`.
    File,
}

struct Row {
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The concrete path: `{ta}` etc. are seeded ids, `{fresh_*}` made anew for every check.
    path: &'static str,
    body: Body,
    /// Statuses in the order of `WHO`.
    expect: [u16; 9],
}

/// `anon` for anonymous; `bad` for the expired, wrong-key, alg-none and deactivated tokens;
/// then customer B, customer A, agent, admin.
const fn e(anon: u16, bad: u16, b: u16, a: u16, agent: u16, admin: u16) -> [u16; 9] {
    [anon, bad, bad, bad, bad, b, a, agent, admin]
}
/// Needs a signed-in user: anonymous and bad tokens get 401.
const fn signed_in(b: u16, a: u16, agent: u16, admin: u16) -> [u16; 9] {
    e(401, 401, b, a, agent, admin)
}
/// Anyone at all: the route reads no token.
const fn open(status: u16) -> [u16; 9] {
    [status; 9]
}

fn table() -> Vec<Row> {
    use Body::{File, Json, None as NoBody};
    let r = |method, route, path, body, expect| Row { method, route, path, body, expect };
    vec![
        // auth: these routes read no token at all.
        r(
            "POST",
            "/api/auth/register",
            "/api/auth/register",
            Json(r#"{"email":"{uniq}@example.com","password":"password123","name":"New"}"#),
            open(201),
        ),
        r(
            "POST",
            "/api/auth/login",
            "/api/auth/login",
            Json(r#"{"email":"{a_email}","password":"password123"}"#),
            open(200),
        ),
        r("GET", "/api/users/me", "/api/users/me", NoBody, signed_in(200, 200, 200, 200)),
        r("PATCH", "/api/users/me", "/api/users/me", Json(r#"{"name":"Still Me"}"#), signed_in(200, 200, 200, 200)),
        // users: staff look people up (agents see name, email and role); the rest is for admins.
        r("GET", "/api/users", "/api/users", NoBody, signed_in(403, 403, 200, 200)),
        r(
            "POST",
            "/api/users",
            "/api/users",
            Json(r#"{"email":"{uniq}@example.com","password":"password123","name":"Made","role":"agent"}"#),
            signed_in(403, 403, 403, 201),
        ),
        r("GET", "/api/users/{id}", "/api/users/{b}", NoBody, signed_in(403, 403, 403, 200)),
        r(
            "PATCH",
            "/api/users/{id}",
            "/api/users/{b}",
            Json(r#"{"name":"Bob Renamed"}"#),
            signed_in(403, 403, 403, 200),
        ),
        r(
            "PATCH",
            "/api/users/{id}",
            "/api/users/{b}",
            Json(r#"{"role":"customer","is_active":true}"#),
            signed_in(403, 403, 403, 200),
        ),
        r("DELETE", "/api/users/{id}", "/api/users/{fresh_user}", NoBody, signed_in(403, 403, 403, 200)),
        // tickets: customers their own (another's is 404, never 403: nothing leaks); staff all.
        r("GET", "/api/tickets", "/api/tickets", NoBody, signed_in(200, 200, 200, 200)),
        r(
            "POST",
            "/api/tickets",
            "/api/tickets",
            Json(r#"{"subject":"new {uniq}","description":"d"}"#),
            signed_in(201, 201, 201, 201),
        ),
        // Opening a ticket for someone else is staff work; naming yourself is allowed.
        r(
            "POST",
            "/api/tickets",
            "/api/tickets",
            Json(r#"{"subject":"for A {uniq}","requester_id":"{a}"}"#),
            signed_in(403, 201, 201, 201),
        ),
        r("GET", "/api/tickets/{id}", "/api/tickets/{ta}", NoBody, signed_in(404, 200, 200, 200)),
        r("GET", "/api/tickets/{id}", "/api/tickets/{tb}", NoBody, signed_in(200, 404, 200, 200)),
        r(
            "PATCH",
            "/api/tickets/{id}",
            "/api/tickets/{ta}",
            Json(r#"{"description":"more details"}"#),
            signed_in(404, 200, 200, 200),
        ),
        r(
            "PATCH",
            "/api/tickets/{id}",
            "/api/tickets/{ta}",
            Json(r#"{"priority":"high"}"#),
            signed_in(404, 403, 200, 200),
        ),
        r("DELETE", "/api/tickets/{id}", "/api/tickets/{fresh_ticket}", NoBody, signed_in(404, 403, 204, 204)),
        // comments: who may read the ticket; internal notes staff only.
        r("GET", "/api/tickets/{id}/comments", "/api/tickets/{ta}/comments", NoBody, signed_in(404, 200, 200, 200)),
        r(
            "POST",
            "/api/tickets/{id}/comments",
            "/api/tickets/{ta}/comments",
            Json(r#"{"content":"a reply"}"#),
            signed_in(404, 201, 201, 201),
        ),
        r(
            "POST",
            "/api/tickets/{id}/comments",
            "/api/tickets/{ta}/comments",
            Json(r#"{"content":"a note","internal":true}"#),
            signed_in(403, 403, 201, 201),
        ),
        r("GET", "/api/comments/{id}", "/api/comments/{ca}", NoBody, signed_in(404, 200, 200, 200)),
        r("GET", "/api/comments/{id}", "/api/comments/{na}", NoBody, signed_in(404, 404, 200, 200)),
        r(
            "PATCH",
            "/api/comments/{id}",
            "/api/comments/{ca}",
            Json(r#"{"content":"edited"}"#),
            signed_in(404, 200, 200, 200),
        ),
        r(
            "PATCH",
            "/api/comments/{id}",
            "/api/comments/{na}",
            Json(r#"{"content":"edited note"}"#),
            signed_in(404, 404, 200, 200),
        ),
        r("DELETE", "/api/comments/{id}", "/api/comments/{fresh_comment}", NoBody, signed_in(404, 204, 204, 204)),
        r("DELETE", "/api/comments/{id}", "/api/comments/{fresh_note}", NoBody, signed_in(404, 404, 204, 204)),
        // KB: published for anyone; drafts and writing staff only. A bad token is 401 even here.
        r("GET", "/api/kb/articles", "/api/kb/articles", NoBody, e(200, 401, 200, 200, 200, 200)),
        r("GET", "/api/kb/articles/{id}", "/api/kb/articles/{published}", NoBody, e(200, 401, 200, 200, 200, 200)),
        r("GET", "/api/kb/articles/{id}", "/api/kb/articles/{draft}", NoBody, e(404, 401, 404, 404, 200, 200)),
        r(
            "POST",
            "/api/kb/articles",
            "/api/kb/articles",
            Json(r#"{"title":"How to {uniq}","body":"b"}"#),
            signed_in(403, 403, 201, 201),
        ),
        r(
            "PATCH",
            "/api/kb/articles/{id}",
            "/api/kb/articles/{published}",
            Json(r#"{"body":"better"}"#),
            signed_in(403, 403, 200, 200),
        ),
        r(
            "PATCH",
            "/api/kb/articles/{id}",
            "/api/kb/articles/{draft}",
            Json(r#"{"body":"still a draft"}"#),
            signed_in(403, 403, 200, 200),
        ),
        r("DELETE", "/api/kb/articles/{id}", "/api/kb/articles/{fresh_article}", NoBody, signed_in(403, 403, 204, 204)),
        // attachments: who may read the ticket; changes by the uploader or staff.
        r(
            "GET",
            "/api/tickets/{id}/attachments",
            "/api/tickets/{ta}/attachments",
            NoBody,
            signed_in(404, 200, 200, 200),
        ),
        r(
            "POST",
            "/api/tickets/{id}/attachments",
            "/api/tickets/{ta}/attachments",
            File,
            signed_in(404, 201, 201, 201),
        ),
        r("GET", "/api/attachments/{id}", "/api/attachments/{att}", NoBody, signed_in(404, 200, 200, 200)),
        r(
            "PATCH",
            "/api/attachments/{id}",
            "/api/attachments/{att}",
            Json(r#"{"filename":"renamed.txt"}"#),
            signed_in(404, 200, 200, 200),
        ),
        r(
            "PATCH",
            "/api/attachments/{id}",
            "/api/attachments/{staff_att}",
            Json(r#"{"filename":"renamed.txt"}"#),
            signed_in(404, 403, 200, 200),
        ),
        r(
            "DELETE",
            "/api/attachments/{id}",
            "/api/attachments/{fresh_attachment}",
            NoBody,
            signed_in(404, 204, 204, 204),
        ),
        r(
            "GET",
            "/api/attachments/{id}/content",
            "/api/attachments/{att}/content",
            NoBody,
            signed_in(404, 200, 200, 200),
        ),
        r(
            "PUT",
            "/api/attachments/{id}/content",
            "/api/attachments/{att}/content",
            File,
            signed_in(404, 200, 200, 200),
        ),
        r(
            "PUT",
            "/api/attachments/{id}/content",
            "/api/attachments/{staff_att}/content",
            File,
            signed_in(404, 403, 200, 200),
        ),
        // notifications and events: your own, and only what you may see.
        r("GET", "/api/notifications", "/api/notifications", NoBody, signed_in(200, 200, 200, 200)),
        r(
            "GET",
            "/api/notifications/unread-count",
            "/api/notifications/unread-count",
            NoBody,
            signed_in(200, 200, 200, 200),
        ),
        r(
            "POST",
            "/api/notifications/{id}/read",
            "/api/notifications/{notif_a}/read",
            NoBody,
            signed_in(404, 200, 404, 404),
        ),
        r("POST", "/api/notifications/read-all", "/api/notifications/read-all", NoBody, signed_in(200, 200, 200, 200)),
        r("GET", "/api/events", "/api/events?limit=500", NoBody, signed_in(200, 200, 200, 200)),
        // webhooks: your own endpoint (only A has one at first), deliveries and secret.
        r("GET", "/api/users/me/webhook", "/api/users/me/webhook", NoBody, signed_in(404, 200, 404, 404)),
        r(
            "GET",
            "/api/users/me/webhook/deliveries/{id}",
            "/api/users/me/webhook/deliveries/{delivery_a}",
            NoBody,
            signed_in(404, 200, 404, 404),
        ),
        r(
            "POST",
            "/api/users/me/webhook/deliveries/{id}/retry",
            "/api/users/me/webhook/deliveries/{delivery_a}/retry",
            NoBody,
            signed_in(404, 202, 404, 404),
        ),
        r(
            "PUT",
            "/api/users/me/webhook",
            "/api/users/me/webhook",
            Json(r#"{"webhook_url":"/api/notifications/webhooks/notifications"}"#),
            signed_in(200, 200, 200, 200),
        ),
        r(
            "POST",
            "/api/users/me/webhook/rotate-secret",
            "/api/users/me/webhook/rotate-secret",
            NoBody,
            signed_in(200, 200, 200, 200),
        ),
        r("POST", "/api/users/me/webhook/test", "/api/users/me/webhook/test", NoBody, signed_in(202, 202, 202, 202)),
        r(
            "GET",
            "/api/users/me/webhook/deliveries",
            "/api/users/me/webhook/deliveries",
            NoBody,
            signed_in(200, 200, 200, 200),
        ),
        r(
            "POST",
            "/api/users/me/webhook/recover",
            "/api/users/me/webhook/recover",
            Json(r#"{"since":"2020-01-01T00:00:00Z"}"#),
            signed_in(202, 202, 202, 202),
        ),
        r("DELETE", "/api/users/me/webhook", "/api/users/me/webhook", NoBody, signed_in(204, 204, 204, 204)),
        // Ingestion: integrations are admin business; the flexible routes take an integration key
        // or a staff token (the import page); native source routes take integration credentials only.
        r("GET", "/api/integrations/webhook/health", "/api/integrations/webhook/health", NoBody, open(200)),
        r("GET", "/api/integrations", "/api/integrations", NoBody, signed_in(403, 403, 403, 200)),
        r(
            "POST",
            "/api/integrations",
            "/api/integrations",
            Json(r#"{"source":"custom","name":"crm {uniq}"}"#),
            signed_in(403, 403, 403, 201),
        ),
        r(
            "DELETE",
            "/api/integrations/{id}",
            "/api/integrations/00000000-0000-7000-8000-000000000000",
            NoBody,
            signed_in(403, 403, 403, 404),
        ),
        r(
            "POST",
            "/api/integrations/webhook",
            "/api/integrations/webhook",
            Json(r#"{"title":"imported {uniq}"}"#),
            signed_in(403, 403, 201, 201),
        ),
        r(
            "POST",
            "/api/integrations/webhook/batch",
            "/api/integrations/webhook/batch",
            Json(r#"[{"title":"batch {uniq}"}]"#),
            signed_in(403, 403, 200, 200),
        ),
        r(
            "POST",
            "/api/v1/tickets/webhook/{source}",
            "/api/v1/tickets/webhook/custom",
            Json(r#"{"title":"native {uniq}"}"#),
            open(401),
        ),
        r(
            "GET",
            "/api/tickets/{id}/suggested-articles",
            "/api/tickets/{ta}/suggested-articles",
            NoBody,
            signed_in(404, 200, 200, 200),
        ),
        // The built-in receiver trusts only a valid signature, never a bearer token.
        r(
            "POST",
            "/api/notifications/webhooks/notifications",
            "/api/notifications/webhooks/notifications",
            Json(r#"{"type":"ticket.created","notification":{"user_id":"{a}"}}"#),
            open(401),
        ),
        // A ticket's timeline names who worked on it: staff only.
        r("GET", "/api/tickets/{id}/timeline", "/api/tickets/{ta}/timeline", NoBody, signed_in(404, 403, 200, 200)),
        // Canned replies are staff's working material.
        r("GET", "/api/canned-replies", "/api/canned-replies", NoBody, signed_in(403, 403, 200, 200)),
        r(
            "POST",
            "/api/canned-replies",
            "/api/canned-replies",
            Json(r#"{"title":"Thanks {uniq}","body":"Hello {{requester.name}}"}"#),
            signed_in(403, 403, 201, 201),
        ),
        r(
            "PATCH",
            "/api/canned-replies/{id}",
            "/api/canned-replies/{canned}",
            Json(r#"{"body":"Hello again {{requester.name}}"}"#),
            signed_in(403, 403, 200, 200),
        ),
        r(
            "DELETE",
            "/api/canned-replies/{id}",
            "/api/canned-replies/{fresh_canned}",
            NoBody,
            signed_in(403, 403, 204, 204),
        ),
        // Notification preferences: your own; only staff can ask for unassigned tickets.
        r(
            "GET",
            "/api/users/me/notification-preferences",
            "/api/users/me/notification-preferences",
            NoBody,
            signed_in(200, 200, 200, 200),
        ),
        r(
            "PUT",
            "/api/users/me/notification-preferences",
            "/api/users/me/notification-preferences",
            Json(r#"{"new_unassigned_tickets":true}"#),
            signed_in(403, 403, 200, 200),
        ),
        // First run: anyone may ask; creating the first admin takes the logged token, and an
        // admin exists here anyway.
        r("GET", "/api/setup", "/api/setup", NoBody, open(200)),
        r(
            "POST",
            "/api/setup",
            "/api/setup",
            Json(r#"{"token":"not-the-token","email":"{uniq}@example.com","name":"Eve","password":"password123"}"#),
            open(403),
        ),
        // Last: it ends each identity's token.
        r("POST", "/api/auth/logout", "/api/auth/logout", NoBody, signed_in(204, 204, 204, 204)),
    ]
}

/// What the seeded helpdesk holds, by name.
struct Seed {
    a: Actor,
    b: Actor,
    agent: Actor,
    deactivated: Actor,
    ids: Vec<(&'static str, String)>,
    a_webhook_secret: String,
}

fn b64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn upload(app: &TestApp, token: &str, ticket: &str, bytes: &[u8]) -> Value {
    let part = Part::bytes(bytes.to_vec()).file_name("notes.txt").mime_str("text/plain").unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{ticket}/attachments")))
        .bearer_auth(token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn seed(app: &TestApp) -> Seed {
    let a = app.customer("Alice").await;
    let b = app.customer("Bob").await;
    let agent = app.agent("Agnes").await;
    let deactivated = app.customer("Dora").await;
    let admin = &app.admin;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();

    let ta = id(&app.post("/api/tickets", &a, json!({ "subject": A_SUBJECT, "description": "tray 2" }), 201).await);
    let tb = id(&app.post("/api/tickets", &b, json!({ "subject": B_SUBJECT, "description": "private" }), 201).await);
    app.post("/api/tickets", &deactivated, json!({ "subject": "Dora's", "description": "x" }), 201).await;
    let ca = id(&app
        .post(&format!("/api/tickets/{ta}/comments"), &a, json!({ "content": "public comment from A" }), 201)
        .await);
    let na = id(&app
        .post(&format!("/api/tickets/{ta}/comments"), &agent, json!({ "content": INTERNAL, "internal": true }), 201)
        .await);
    // A public reply by staff notifies A.
    app.post(&format!("/api/tickets/{ta}/comments"), &agent, json!({ "content": "we are on it" }), 201).await;
    let att = id(&upload(app, &a.token, &ta, b"attachment of A").await);
    let staff_att = id(&upload(app, &agent.token, &ta, b"attachment by staff").await);
    let draft = id(&app
        .post("/api/kb/articles", &agent, json!({ "title": DRAFT, "body": "tbd", "status": "draft" }), 201)
        .await);
    let published = id(&app
        .post(
            "/api/kb/articles",
            &agent,
            json!({ "title": "Reset your password", "body": "steps", "status": "published" }),
            201,
        )
        .await);
    let notif_a = app
        .eventually(|| async {
            let list = app.get("/api/notifications", &a, 200).await;
            list["items"].as_array().and_then(|items| items.first()).map(id)
        })
        .await;
    let hook = app
        .call(
            reqwest::Method::PUT,
            "/api/users/me/webhook",
            Some(&a.token),
            Some(json!({ "webhook_url": "/api/notifications/webhooks/notifications" })),
            200,
        )
        .await;
    let a_webhook_secret = hook["secret"].as_str().expect("webhook secret").to_string();
    let delivery_a =
        app.post("/api/users/me/webhook/test", &a, json!(null), 202).await["delivery_id"].as_str().unwrap().to_string();
    // The delivery row is written by the dispatcher just after the answer. Should it never
    // appear, carry on: the delivery rows of the table then fail and say so.
    for _ in 0..100 {
        let (status, _) = app
            .try_call(
                reqwest::Method::GET,
                &format!("/api/users/me/webhook/deliveries/{delivery_a}"),
                Some(&a.token),
                None,
            )
            .await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.delete(&format!("/api/users/{}", deactivated.id), admin, 200).await;
    let canned = id(&app
        .post("/api/canned-replies", &agent, json!({ "title": "Welcome", "body": "Hello {{requester.name}}" }), 201)
        .await);

    Seed {
        ids: vec![
            ("{ta}", ta),
            ("{tb}", tb),
            ("{ca}", ca),
            ("{na}", na),
            ("{att}", att),
            ("{staff_att}", staff_att),
            ("{draft}", draft),
            ("{published}", published),
            ("{notif_a}", notif_a),
            ("{delivery_a}", delivery_a),
            ("{a}", a.id.clone()),
            ("{b}", b.id.clone()),
            ("{a_email}", a.email.clone()),
            ("{canned}", canned),
        ],
        a,
        b,
        agent,
        deactivated,
        a_webhook_secret,
    }
}

/// Makes the `{fresh_*}` resource a destructive check consumes.
async fn fresh(app: &TestApp, s: &Seed, name: &str) -> String {
    let ta = &s.ids[0].1;
    let id = |v: Value| v["id"].as_str().unwrap().to_string();
    match name {
        "{fresh_user}" => {
            let email = format!("gone-{}@example.com", uuid::Uuid::new_v4().simple());
            id(app
                .post(
                    "/api/users",
                    &app.admin,
                    json!({ "email": email, "password": "password123", "name": "Gone" }),
                    201,
                )
                .await)
        }
        "{fresh_ticket}" => {
            id(app.post("/api/tickets", &s.a, json!({ "subject": "to delete", "description": "x" }), 201).await)
        }
        "{fresh_comment}" => {
            id(app.post(&format!("/api/tickets/{ta}/comments"), &s.a, json!({ "content": "to delete" }), 201).await)
        }
        "{fresh_note}" => id(app
            .post(
                &format!("/api/tickets/{ta}/comments"),
                &s.agent,
                json!({ "content": "note to delete", "internal": true }),
                201,
            )
            .await),
        "{fresh_article}" => id(app
            .post("/api/kb/articles", &s.agent, json!({ "title": "to delete", "status": "published" }), 201)
            .await),
        "{fresh_attachment}" => id(upload(app, &s.a.token, ta, b"to delete").await),
        "{fresh_canned}" => {
            id(app.post("/api/canned-replies", &s.agent, json!({ "title": "to delete", "body": "x" }), 201).await)
        }
        other => panic!("no fresh resource {other}"),
    }
}

/// What must never appear in a response to `who`.
fn secrets_for(who: Who, s: &Seed) -> Vec<String> {
    let mut out = vec![INTERNAL.to_string(), DRAFT.to_string()];
    match who {
        Who::Agent | Who::Admin => out.clear(),
        Who::CustomerA => out.push(B_SUBJECT.into()),
        Who::CustomerB => out.push(A_SUBJECT.into()),
        _ => out.extend([A_SUBJECT.into(), B_SUBJECT.into()]),
    }
    if who != Who::CustomerA {
        out.push(s.a_webhook_secret.clone());
    }
    out
}

#[tokio::test]
async fn every_route_for_every_identity() {
    let app = common::spawn_app().await;
    let secret = app.config.jwt_secret.clone().expect("test secret");
    let s = seed(&app).await;

    // The three forged or stale tokens all claim to be the admin.
    let expired_issued = Instant::now();
    let expired = JwtKeys::new(secret.as_bytes(), 0).issue(&app.admin.id, "admin").unwrap();
    let other_key =
        JwtKeys::new(b"not-the-server-key-not-the-server-key!!", 3600).issue(&app.admin.id, "admin").unwrap();
    let payload = app.admin.token.split('.').nth(1).unwrap();
    let alg_none = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#));
    // `exp` is whole seconds and checked with no leeway: one second on, the token is expired.
    if let Some(wait) = Duration::from_millis(1100).checked_sub(expired_issued.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    let token = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Expired => Some(expired.clone()),
            Who::OtherKey => Some(other_key.clone()),
            Who::AlgNone => Some(alg_none.clone()),
            Who::Deactivated => Some(s.deactivated.token.clone()),
            Who::CustomerB => Some(s.b.token.clone()),
            Who::CustomerA => Some(s.a.token.clone()),
            Who::Agent => Some(s.agent.token.clone()),
            Who::Admin => Some(app.admin.token.clone()),
        }
    };

    let rows = table();
    let mut checks = 0usize;
    let mut failures = Vec::new();
    for row in &rows {
        for (i, who) in WHO.iter().enumerate() {
            let mut path = row.path.to_string();
            for (name, value) in &s.ids {
                path = path.replace(name, value);
            }
            if let Some(start) = path.find("{fresh_") {
                let end = start + path[start..].find('}').unwrap() + 1;
                let name = path[start..end].to_string();
                path = path.replace(&name, &fresh(&app, &s, &name).await);
            }
            let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
            let mut req = app.client.request(method, app.url(&path));
            if let Some(t) = token(*who) {
                req = req.bearer_auth(t);
            }
            req = match &row.body {
                Body::None => req,
                Body::Json(text) => {
                    let mut text = text.replace("{uniq}", &uuid::Uuid::new_v4().simple().to_string());
                    for (name, value) in &s.ids {
                        text = text.replace(name, value);
                    }
                    req.header("content-type", "application/json").body(text)
                }
                Body::File => {
                    let part =
                        Part::bytes(b"from the matrix".to_vec()).file_name("m.txt").mime_str("text/plain").unwrap();
                    req.multipart(Form::new().part("file", part))
                }
            };
            let resp = req.send().await.expect("request sent");
            let status = resp.status().as_u16();
            let body = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
            checks += 1;
            let want = row.expect[i];
            if status != want {
                failures.push(format!(
                    "{} {} as {who:?}: expected {want}, got {status}: {}",
                    row.method,
                    row.path,
                    &body[..body.len().min(200)]
                ));
            }
            for secret in secrets_for(*who, &s) {
                if body.contains(&secret) {
                    failures.push(format!("LEAK {} {} as {who:?}: response contains {secret:?}", row.method, row.path));
                }
            }
        }
    }

    // Every operation of the OpenAPI document has at least one row.
    let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented = BTreeSet::new();
    for (route, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), route.clone()));
            }
        }
    }
    let covered: BTreeSet<(String, String)> =
        rows.iter().map(|r| (r.method.to_string(), r.route.to_string())).collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(missing.is_empty(), "routes without a row in the authorization table: {missing:?}");
    assert!(stale.is_empty(), "rows for routes the document does not list: {stale:?}");

    println!(
        "authz matrix: {checks} route×identity checks ({} rows over {} documented operations × {} identities), {} failures",
        rows.len(),
        documented.len(),
        WHO.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {checks} checks failed:\n{}", failures.len(), failures.join("\n"));
}
