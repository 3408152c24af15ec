//! Hardening seen from outside: wrong methods keep the error format, every answer carries the
//! security headers, the Socket.IO engine takes its limits from the configuration, manual
//! webhook sends are throttled, attachment bytes leave with their last row, and filenames lose
//! their bidirectional controls.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::path::Path;

use reqwest::{
    Method,
    multipart::{Form, Part},
};
use serde_json::{Value, json};

/// Sends `method path` without a body; returns status, headers and the JSON body (or Null).
async fn raw(app: &common::TestApp, method: Method, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = app.client.request(method, app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn allow(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    let value = headers.get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    value.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
}

#[tokio::test]
async fn wrong_methods_and_unknown_api_paths_answer_in_json() {
    let web = web_dir_with_index();
    let app = common::spawn_with(|c| c.web_dir = web.clone()).await;
    for (method, path, allowed) in [
        (Method::PUT, "/api/tickets", &["GET", "POST"][..]),
        (Method::OPTIONS, "/api/tickets", &["GET", "POST"]),
        (Method::DELETE, "/api/tickets/0190d2a4-0000-7000-8000-000000000000/attachments", &["GET", "POST"]),
        (Method::PATCH, "/api/attachments/x/content", &["GET", "PUT"]),
        (Method::POST, "/healthz", &["GET"]),
        (Method::DELETE, "/api/openapi.json", &["GET"]),
        (Method::POST, "/docs/", &["GET"]),
        (Method::PUT, "/", &["GET"]),
        (Method::POST, "/some/page", &["GET"]),
    ] {
        let (status, headers, body) = raw(&app, method.clone(), path).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(body["code"], "method_not_allowed", "{method} {path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(method.as_str()), "{body}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
        let got = allow(&headers);
        for m in allowed {
            assert!(got.iter().any(|g| g == m), "{method} {path}: Allow {got:?} lacks {m}");
        }
        assert!(!got.iter().any(|g| g == method.as_str()), "{method} {path}: Allow {got:?}");
    }
    for path in ["/api", "/api/", "/api/no/such/thing", "/api/tickets/x/nothing"] {
        for method in [Method::GET, Method::POST, Method::OPTIONS] {
            let (status, _, body) = raw(&app, method.clone(), path).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(body["code"], "not_found", "{method} {path}: {body}");
        }
    }
    // The web-client still answers its own paths.
    let (status, _, _) = raw(&app, Method::GET, "/tickets/123").await;
    assert_eq!(status, 200);
}

/// A web-client build of one page, so `/` answers 200.
fn web_dir_with_index() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tw-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>t</title><script type=\"module\" src=\"/a.js\"></script>",
    )
    .unwrap();
    dir
}

/// The directives every policy must have, and no inline or evaluated script anywhere.
fn assert_strict_policy(path: &str, csp: &str) {
    for directive in
        ["default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{path}: {csp:?} lacks {directive}");
    }
    let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
    assert!(!script.contains("unsafe"), "{path}: {script}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let web = web_dir_with_index();
    let app = common::spawn_with(|c| c.web_dir = web.clone()).await;
    for (method, path, status) in [
        (Method::GET, "/", 200),
        (Method::GET, "/docs/", 200),
        (Method::GET, "/docs/swagger-initializer.js", 200),
        (Method::GET, "/api/openapi.json", 200),
        (Method::GET, "/api/tickets", 401),
        (Method::PUT, "/api/tickets", 405),
        (Method::GET, "/api/nothing", 404),
        (Method::GET, "/healthz", 200),
    ] {
        let (got, headers, _) = raw(&app, method.clone(), path).await;
        assert_eq!(got, status, "{method} {path}");
        let csp = headers.get("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert_strict_policy(path, csp.to_str().unwrap());
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    // The app and the API allow no inline style either; only the docs page needs it.
    let (_, headers, _) = raw(&app, Method::GET, "/").await;
    assert!(!headers["content-security-policy"].to_str().unwrap().contains("unsafe-inline"));
    let (_, headers, _) = raw(&app, Method::GET, "/api/tickets").await;
    assert!(!headers["content-security-policy"].to_str().unwrap().contains("unsafe-inline"));

    // A download keeps its own, stricter sandbox.
    let c = app.customer("Cleo").await;
    let t = app.ticket(&c, "Help").await;
    let a = upload(&app, &c, t["id"].as_str().unwrap(), "page.html", b"<script>alert(1)</script>".to_vec()).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/attachments/{}/content", a["id"].as_str().unwrap())))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
}

/// The docs page under its policy: every script is a file from this origin (no inline script to
/// be blocked), each is served with a type `nosniff` accepts, and the initializer points at our
/// document.
#[tokio::test]
async fn the_docs_page_runs_under_its_policy() {
    let app = common::spawn_app().await;
    let resp = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert_strict_policy("/docs/", &csp);
    let html = resp.text().await.unwrap();
    let mut scripts = Vec::new();
    for tag in html.split("<script").skip(1) {
        let (attrs, rest) = tag.split_once('>').unwrap();
        let body = rest.split("</script>").next().unwrap();
        assert!(body.trim().is_empty(), "inline script in /docs/: {body:?}");
        let src = attrs.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script without src");
        assert!(!src.contains("//"), "a script from elsewhere: {src}");
        scripts.push(src.trim_start_matches("./").to_string());
    }
    assert!(scripts.iter().any(|s| s == "swagger-initializer.js"), "{scripts:?}");
    for src in &scripts {
        let resp = app.client.get(app.url(&format!("/docs/{src}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{src}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.contains("javascript"), "{src}: {ct}");
        let text = resp.text().await.unwrap();
        if src == "swagger-initializer.js" {
            assert!(text.contains("/api/openapi.json"), "{text}");
            assert!(text.contains("\"validatorUrl\": \"none\""), "{text}");
        }
    }
    let resp = app.client.get(app.url("/docs/swagger-ui.css")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    // Inline styles, data: icons: what Swagger UI needs, on the docs only.
    assert!(csp.contains("style-src 'self' 'unsafe-inline'") && csp.contains("img-src 'self' data:"), "{csp}");
}

#[tokio::test]
async fn the_engine_advertises_the_configured_settings() {
    let app = common::spawn_with(|c| {
        c.socketio.ping_interval_ms = 7_000;
        c.socketio.ping_timeout_ms = 3_000;
        c.socketio.max_payload_bytes = 12_345;
    })
    .await;
    let resp = app.client.get(app.url("/socket.io/?EIO=4&transport=polling")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let open: Value = serde_json::from_str(text.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["pingInterval"], 7_000, "{open}");
    assert_eq!(open["pingTimeout"], 3_000, "{open}");
    assert_eq!(open["maxPayload"], 12_345, "{open}");
}

#[test]
fn socket_io_settings_come_from_the_environment() {
    let mut c = ticketwire::config::Config::default();
    c.apply_env(|k| match k {
        "TICKETWIRE_SOCKETIO_PING_INTERVAL_MS" => Some("1000".into()),
        "TICKETWIRE_SOCKETIO_PING_TIMEOUT_MS" => Some("2000".into()),
        "TICKETWIRE_SOCKETIO_MAX_PAYLOAD" => Some("4096".into()),
        "TICKETWIRE_SOCKETIO_CONNECT_TIMEOUT_MS" => Some("3000".into()),
        "TICKETWIRE_WEBHOOK_MANUAL_SENDS_PER_MINUTE" => Some("4".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        (c.socketio.ping_interval_ms, c.socketio.ping_timeout_ms, c.socketio.max_payload_bytes),
        (1000, 2000, 4096)
    );
    assert_eq!(c.socketio.connect_timeout_ms, 3000);
    assert_eq!(c.webhooks.manual_sends_per_minute, 4);
    let err = c.apply_env(|k| (k == "TICKETWIRE_SOCKETIO_MAX_PAYLOAD").then(|| "big".into())).unwrap_err();
    assert!(err.to_string().contains("TICKETWIRE_SOCKETIO_MAX_PAYLOAD"));
}

#[tokio::test]
async fn manual_webhook_sends_are_throttled_per_user() {
    let app = common::spawn_with(|c| c.webhooks.manual_sends_per_minute = 3).await;
    let a = app.agent("Agnes").await;
    let b = app.agent("Bert").await;
    for who in [&a, &b] {
        app.call(
            Method::PUT,
            "/api/users/me/webhook",
            Some(&who.token),
            Some(json!({ "webhook_url": "/api/notifications/webhooks/notifications" })),
            200,
        )
        .await;
    }
    for _ in 0..3 {
        app.post("/api/users/me/webhook/test", &a, json!(null), 202).await;
    }
    let resp = app.client.post(app.url("/api/users/me/webhook/test")).bearer_auth(&a.token).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    // Retries draw on the same allowance, before the delivery is even looked up.
    let e = app.post("/api/users/me/webhook/deliveries/no-such-delivery/retry", &a, json!(null), 429).await;
    assert_eq!(e["code"], "rate_limited");

    // Another user has their own.
    let id =
        app.post("/api/users/me/webhook/test", &b, json!(null), 202).await["delivery_id"].as_str().unwrap().to_string();
    app.eventually(|| async {
        let (status, _) =
            app.try_call(Method::GET, &format!("/api/users/me/webhook/deliveries/{id}"), Some(&b.token), None).await;
        (status == 200).then_some(())
    })
    .await;
    app.post(&format!("/api/users/me/webhook/deliveries/{id}/retry"), &b, json!(null), 202).await;
    app.post(&format!("/api/users/me/webhook/deliveries/{id}/retry"), &b, json!(null), 202).await;
    app.post(&format!("/api/users/me/webhook/deliveries/{id}/retry"), &b, json!(null), 429).await;
}

async fn upload(app: &common::TestApp, who: &common::Actor, ticket: &str, name: &str, bytes: Vec<u8>) -> Value {
    let part = Part::bytes(bytes).file_name(name.to_string()).mime_str("application/octet-stream").unwrap();
    // Raw UTF-8 in the part's filename, as browsers send it (reqwest would percent-encode it).
    let form = Form::new().percent_encode_noop().part("file", part);
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{ticket}/attachments")))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn replace(app: &common::TestApp, who: &common::Actor, id: &str, bytes: Vec<u8>, expect: u16) {
    let part = Part::bytes(bytes).file_name("x.bin").mime_str("application/octet-stream").unwrap();
    let resp = app
        .client
        .put(app.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(&who.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), expect);
}

/// Every file under the attachment store, staging included, by name (`ab/cdef…` → `abcdef…`).
fn stored(data_dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &name, out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data_dir.join("attachments"), "", &mut out);
    out.sort();
    out
}

fn sha(a: &Value) -> String {
    a["sha256"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn attachment_bytes_leave_with_their_last_row() {
    let app = common::spawn_app().await;
    let dir = app.config.data_dir.clone();
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t1 = app.ticket(&c, "One").await;
    let t2 = app.ticket(&c, "Two").await;
    let (t1, t2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());
    assert!(stored(&dir).is_empty());

    // The same bytes twice are stored once, and stay while either row refers to them.
    let a = upload(&app, &c, t1, "a.txt", b"shared bytes".to_vec()).await;
    let b = upload(&app, &c, t2, "b.txt", b"shared bytes".to_vec()).await;
    assert_eq!(stored(&dir), vec![sha(&a)]);
    app.delete(&format!("/api/attachments/{}", a["id"].as_str().unwrap()), &c, 204).await;
    assert_eq!(stored(&dir), vec![sha(&b)]);
    let got = app
        .client
        .get(app.url(&format!("/api/attachments/{}/content", b["id"].as_str().unwrap())))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"shared bytes");
    app.delete(&format!("/api/attachments/{}", b["id"].as_str().unwrap()), &c, 204).await;
    assert!(stored(&dir).is_empty(), "{:?}", stored(&dir));

    // Replaced content goes; content another row still uses stays.
    let r = upload(&app, &c, t1, "r.txt", b"first".to_vec()).await;
    let keep = upload(&app, &c, t2, "keep.txt", b"kept".to_vec()).await;
    let rid = r["id"].as_str().unwrap();
    replace(&app, &c, rid, b"second".to_vec(), 200).await;
    let now = app.get(&format!("/api/attachments/{rid}"), &c, 200).await;
    let mut want = vec![sha(&now), sha(&keep)];
    want.sort();
    assert_eq!(stored(&dir), want);
    replace(&app, &c, rid, b"kept".to_vec(), 200).await;
    assert_eq!(stored(&dir), vec![sha(&keep)]);
    replace(&app, &c, rid, b"third".to_vec(), 200).await;
    assert_eq!(stored(&dir).len(), 2, "the shared content stayed when one of its rows moved on");
    // A replacement refused (someone else's attachment) leaves nothing behind, staging included.
    let other = app.customer("Olga").await;
    replace(&app, &other, rid, b"not yours".to_vec(), 404).await;
    assert_eq!(stored(&dir).len(), 2);

    // Deleting a ticket takes its attachments' bytes, not those of another ticket's.
    upload(&app, &c, t1, "more.txt", b"more".to_vec()).await;
    upload(&app, &c, t1, "kept-too.txt", b"kept".to_vec()).await;
    assert_eq!(stored(&dir).len(), 3);
    app.delete(&format!("/api/tickets/{t1}"), &agent, 204).await;
    assert_eq!(stored(&dir), vec![sha(&keep)]);
    app.delete(&format!("/api/tickets/{t2}"), &agent, 204).await;
    assert!(stored(&dir).is_empty(), "{:?}", stored(&dir));
}

#[tokio::test]
async fn filenames_lose_bidirectional_controls() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let t = app.ticket(&c, "Invoice").await;
    let a = upload(&app, &c, t["id"].as_str().unwrap(), "invoice\u{202E}fdp.exe", b"MZ".to_vec()).await;
    assert_eq!(a["filename"], "invoicefdp.exe");
    let id = a["id"].as_str().unwrap();
    let all = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}";
    let renamed =
        app.patch(&format!("/api/attachments/{id}"), &c, json!({ "filename": format!("re{all}port.pdf") }), 200).await;
    assert_eq!(renamed["filename"], "report.pdf");
    // Right-to-left text itself is kept.
    let renamed = app.patch(&format!("/api/attachments/{id}"), &c, json!({ "filename": "חשבונית.pdf" }), 200).await;
    assert_eq!(renamed["filename"], "חשבונית.pdf");
    let stored = app.get(&format!("/api/attachments/{id}"), &c, 200).await;
    assert_eq!(stored["filename"], "חשבונית.pdf");
}
