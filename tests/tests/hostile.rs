//! Hostile input: every refusal is a clean 4xx in our `{code, detail}` shape, never a 500 and
//! never a crash; what is accepted comes back byte for byte, as text.
//! Runs on SQLite and (with `TEST_DATABASE_URL`) on PostgreSQL, where NUL bytes are the classic 500.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use common::TestApp;
use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};
use serde_json::{Value, json};

/// Sends raw bytes with a content type; returns the status and the body (JSON or Null).
async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A refusal: the status, and our error shape with a snake_case code.
#[track_caller]
fn refused(got: (StatusCode, Value), status: u16, what: &str) {
    assert_eq!(got.0.as_u16(), status, "{what}: {}", got.1);
    assert!(got.1["code"].is_string() && got.1["detail"].is_string(), "{what}: not an error body: {}", got.1);
}

#[tokio::test]
async fn oversized_and_nul_text_is_422() {
    let app = common::spawn_app().await;
    let a = app.customer("Alice").await;
    let megabyte = "x".repeat(1024 * 1024);
    let (s, v) = app
        .try_call(
            reqwest::Method::POST,
            "/api/tickets",
            Some(&a.token),
            Some(json!({ "subject": megabyte, "description": "d" })),
        )
        .await;
    refused((s, v.clone()), 422, "1 MB subject");
    assert!(v["detail"].as_str().unwrap().contains("subject"), "{v}");

    let t = app.ticket(&a, "fine").await;
    let tid = t["id"].as_str().unwrap();
    for (path, body) in [
        ("/api/tickets".to_string(), json!({ "subject": "a\u{0}b", "description": "d" })),
        ("/api/tickets".to_string(), json!({ "subject": "ok", "description": "nul \u{0} inside" })),
        ("/api/tickets".to_string(), json!({ "subject": "ok", "tags": ["a\u{0}"] })),
        (format!("/api/tickets/{tid}/comments"), json!({ "content": "\u{0}" })),
        (
            "/api/auth/register".to_string(),
            json!({ "email": "n@example.com", "password": "pass\u{0}word", "name": "N" }),
        ),
    ] {
        let got = app.try_call(reqwest::Method::POST, &path, Some(&a.token), Some(body.clone())).await;
        refused(got, 422, &format!("NUL in {path} {body}"));
    }
    let got = app
        .try_call(
            reqwest::Method::PATCH,
            &format!("/api/tickets/{tid}"),
            Some(&a.token),
            Some(json!({ "subject": "x\u{0}" })),
        )
        .await;
    refused(got, 422, "NUL in a PATCH");
    // In a query string (PostgreSQL cannot compare text with NUL) and in a path.
    for q in ["/api/tickets?q=%00", "/api/tickets?source=a%00b", "/api/kb/articles?category=%00", "/api/users?q=%00"] {
        let got = app.try_call(reqwest::Method::GET, q, Some(&app.admin.token), None).await;
        refused(got, 422, q);
    }
    for p in ["/api/tickets/%00", "/api/comments/a%00b", "/api/kb/articles/%00"] {
        let got = app.try_call(reqwest::Method::GET, p, Some(&app.admin.token), None).await;
        refused(got, 404, p);
    }
    // Nothing was written by any of it.
    let list = app.get("/api/tickets", &a, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = common::spawn_app().await;
    let a = app.customer("Alice").await;
    let post = reqwest::Method::POST;
    // Invalid UTF-8 inside a JSON string, and as the whole body.
    let mut body = br#"{"subject":"caf"#.to_vec();
    body.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    body.extend_from_slice(br#"","description":"d"}"#);
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "application/json", body).await,
        400,
        "invalid UTF-8 in a string",
    );
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "application/json", vec![0xFF, 0xFE, 0xFD]).await,
        400,
        "invalid UTF-8 body",
    );
    // A lone surrogate escape is not a Unicode scalar value.
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "application/json", br#"{"subject":"\ud800"}"#.to_vec())
            .await,
        400,
        "lone surrogate",
    );
    // Truncated, empty, trailing garbage.
    for body in [&br#"{"subject":"#[..], b"", br#"{"subject":"a"} x"#] {
        refused(
            raw(&app, post.clone(), "/api/tickets", &a.token, "application/json", body.to_vec()).await,
            400,
            &String::from_utf8_lossy(body),
        );
    }
    // Deeply nested JSON: 100 000 levels, at the top and inside a field, is refused by the
    // parser's depth limit (no stack overflow: the server keeps answering).
    let depth = 100_000;
    let nested_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "application/json", nested_array.into_bytes()).await,
        400,
        "nested arrays",
    );
    let nested_object = format!(r#"{{"subject":"s","metadata":{}1{}}}"#, r#"{"a":"#.repeat(depth), "}".repeat(depth));
    refused(
        raw(&app, post.clone(), "/api/tickets", &app.admin.token, "application/json", nested_object.into_bytes()).await,
        400,
        "nested objects",
    );
    let nested_hook = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let got = raw(
        &app,
        post.clone(),
        "/api/notifications/webhooks/notifications",
        &a.token,
        "application/json",
        nested_hook.into_bytes(),
    )
    .await;
    assert!(got.0.is_client_error(), "nested webhook body: {:?}", got);
    // A JSON array where an object is expected.
    refused(
        raw(&app, reqwest::Method::PATCH, "/api/users/me", &a.token, "application/json", b"[null, null]".to_vec())
            .await,
        400,
        "array body",
    );
    app.get("/api/users/me", &a, 200).await;
}

#[tokio::test]
async fn markup_is_stored_and_returned_verbatim() {
    let app = common::spawn_app().await;
    let a = app.customer("Alice").await;
    let agent = app.agent("Agnes").await;
    let nasty = [
        "<script>alert(document.cookie)</script>",
        "<img src=x onerror=alert(1)>",
        "\"><svg/onload=alert(1)>",
        "javascript:alert(1)",
        "{{constructor.constructor('alert(1)')()}}",
        "'; DROP TABLE tickets; --",
        "%00%0d%0aSet-Cookie: x=y",
        "\u{202E}gnp.exe \u{FEFF}\u{200B} zalgo: Z\u{0351}\u{0352}\u{0353}",
        "emoji 🎫🔥 and CJK 票",
        "../../etc/passwd",
    ];
    for text in nasty {
        let t =
            app.post("/api/tickets", &a, json!({ "subject": text, "description": text, "tags": [text] }), 201).await;
        let id = t["id"].as_str().unwrap();
        let resp = app.client.get(app.url(&format!("/api/tickets/{id}"))).bearer_auth(&a.token).send().await.unwrap();
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let back: Value = resp.json().await.unwrap();
        assert_eq!(back["subject"], text);
        assert_eq!(back["description"], text);
        assert_eq!(back["tags"], json!([text]));
        let c = app.post(&format!("/api/tickets/{id}/comments"), &agent, json!({ "content": text }), 201).await;
        let cid = c["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/api/comments/{cid}"), &a, 200).await["content"], text);
        let k = app
            .post("/api/kb/articles", &agent, json!({ "title": text, "body": text, "status": "published" }), 201)
            .await;
        assert_eq!(k["title"], text);
        // And the search finds it as text, not as a pattern.
        let found = app.get(&format!("/api/tickets?q={}", urlencode(text)), &a, 200).await;
        assert!(found["items"].as_array().unwrap().iter().any(|t| t["subject"] == text), "search for {text}");
    }
    // LIKE wildcards in a search are literal.
    let all = app.get("/api/tickets?q=%25", &a, 200).await;
    assert!(all["items"].as_array().unwrap().iter().all(|t| t["subject"].as_str().unwrap().contains('%')));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn oversized_bodies_are_413_and_wrong_types_415() {
    let app = common::spawn_app().await;
    let a = app.customer("Alice").await;
    let t = app.ticket(&a, "big").await;
    let tid = t["id"].as_str().unwrap();
    // JSON over the global cap (2 MiB by default).
    let huge = format!(r#"{{"subject":"s","description":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    refused(
        raw(&app, reqwest::Method::POST, "/api/tickets", &a.token, "application/json", huge.into_bytes()).await,
        413,
        "3 MiB JSON",
    );
    // An attachment over the upload cap (1 MiB in tests).
    let part =
        Part::bytes(vec![b'x'; 1024 * 1024 + 1]).file_name("big.bin").mime_str("application/octet-stream").unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{tid}/attachments")))
        .bearer_auth(&a.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    refused((status, resp.json().await.unwrap_or(Value::Null)), 413, "attachment over the cap");
    assert_eq!(app.get(&format!("/api/tickets/{tid}/attachments"), &a, 200).await, json!([]));

    // Wrong content types.
    let post = reqwest::Method::POST;
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "text/plain", br#"{"subject":"s"}"#.to_vec()).await,
        415,
        "text/plain JSON",
    );
    refused(
        raw(&app, post.clone(), "/api/tickets", &a.token, "application/x-www-form-urlencoded", b"subject=s".to_vec())
            .await,
        415,
        "form body",
    );
    refused(
        raw(
            &app,
            post.clone(),
            &format!("/api/tickets/{tid}/attachments"),
            &a.token,
            "application/json",
            b"{}".to_vec(),
        )
        .await,
        415,
        "JSON upload",
    );
    refused(
        raw(
            &app,
            post.clone(),
            &format!("/api/tickets/{tid}/attachments"),
            &a.token,
            "multipart/form-data",
            b"x".to_vec(),
        )
        .await,
        400,
        "multipart without boundary",
    );
    let resp =
        app.client.post(app.url("/api/tickets")).bearer_auth(&a.token).body(r#"{"subject":"s"}"#).send().await.unwrap();
    assert_eq!(resp.status(), 415, "no content type");
    // An extra form field next to `file` is refused and stores nothing.
    let part = Part::bytes(b"x".to_vec()).file_name("x.txt").mime_str("text/plain").unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{tid}/attachments")))
        .bearer_auth(&a.token)
        .multipart(Form::new().part("file", part).text("extra", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(app.get(&format!("/api/tickets/{tid}/attachments"), &a, 200).await, json!([]));
}

/// Hostile strings in every text field of every writable resource and in every filter: the
/// server answers each with a 2xx or a 4xx in our shape, never a 5xx.
#[tokio::test]
async fn hostile_strings_everywhere_never_500() {
    let app = common::spawn_app().await;
    let admin = app.admin.clone();
    let t = app.ticket(&admin, "target").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let c = app.post(&format!("/api/tickets/{tid}/comments"), &admin, json!({ "content": "c" }), 201).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let k = app.post("/api/kb/articles", &admin, json!({ "title": "k" }), 201).await;
    let kid = k["id"].as_str().unwrap().to_string();
    let long = "é".repeat(600);
    let strings: Vec<String> = vec![
        "".into(),
        " ".into(),
        "\u{0}".into(),
        "\u{1}\u{1f}\u{7f}".into(),
        "\r\n\t".into(),
        long,
        "\u{FFFF}\u{10FFFF}".into(),
        "' OR 1=1 --".into(),
        "\\".into(),
        "%".into(),
        "_".into(),
        "<script>x</script>".into(),
        "0".into(),
        "-1".into(),
        "9".repeat(40),
        "null".into(),
        "01a201d5-c926-7653-9b45-7d67ef7b9736".into(),
    ];
    let mut checked = 0;
    for s in &strings {
        let requests: Vec<(reqwest::Method, String, Option<Value>)> = vec![
            (
                reqwest::Method::POST,
                "/api/tickets".into(),
                Some(
                    json!({ "subject": s, "description": s, "category": s, "tags": [s], "source": s, "external_id": s, "requester_email": s, "assignee_id": s, "requester_id": s }),
                ),
            ),
            (
                reqwest::Method::PATCH,
                format!("/api/tickets/{tid}"),
                Some(json!({ "subject": s, "category": s, "assignee_id": s })),
            ),
            (
                reqwest::Method::POST,
                format!("/api/tickets/{tid}/comments"),
                Some(json!({ "content": s, "parent_id": s })),
            ),
            (
                reqwest::Method::POST,
                format!("/api/tickets/{tid}/comments"),
                Some(json!({ "content": "ok", "parent_id": s })),
            ),
            (reqwest::Method::POST, "/api/tickets".into(), Some(json!({ "subject": "ok", "requester_id": s }))),
            (reqwest::Method::POST, "/api/tickets".into(), Some(json!({ "subject": "ok", "assignee_id": s }))),
            (reqwest::Method::POST, "/api/tickets".into(), Some(json!({ "subject": "ok", "requester_email": s }))),
            (reqwest::Method::PATCH, format!("/api/tickets/{tid}"), Some(json!({ "requester_id": s }))),
            (
                reqwest::Method::PATCH,
                "/api/users/me".into(),
                Some(json!({ "password": "long enough", "current_password": s })),
            ),
            (reqwest::Method::PATCH, format!("/api/attachments/{}", urlencode(s)), Some(json!({ "filename": s }))),
            (reqwest::Method::PATCH, format!("/api/comments/{cid}"), Some(json!({ "content": s }))),
            (
                reqwest::Method::POST,
                "/api/kb/articles".into(),
                Some(json!({ "title": s, "body": s, "category": s, "tags": [s] })),
            ),
            (reqwest::Method::PATCH, format!("/api/kb/articles/{kid}"), Some(json!({ "title": s, "category": s }))),
            (reqwest::Method::POST, "/api/users".into(), Some(json!({ "email": s, "password": s, "name": s }))),
            (
                reqwest::Method::PATCH,
                "/api/users/me".into(),
                Some(json!({ "name": s, "password": s, "current_password": s })),
            ),
            (reqwest::Method::POST, "/api/auth/login".into(), Some(json!({ "email": s, "password": s }))),
            (reqwest::Method::PUT, "/api/users/me/webhook".into(), Some(json!({ "webhook_url": s }))),
            (
                reqwest::Method::GET,
                format!("/api/tickets?q={0}&source={0}&requester_id={0}&assignee_id={0}&cursor={0}", urlencode(s)),
                None,
            ),
            (reqwest::Method::GET, format!("/api/kb/articles?q={0}&category={0}&cursor={0}", urlencode(s)), None),
            (reqwest::Method::GET, format!("/api/users?q={0}&cursor={0}", urlencode(s)), None),
            (
                reqwest::Method::GET,
                format!("/api/users/me/webhook/deliveries?cursor={0}&status={0}", urlencode(s)),
                None,
            ),
            (reqwest::Method::GET, format!("/api/events?after={0}", urlencode(s)), None),
            (reqwest::Method::GET, format!("/api/tickets/{}", urlencode(s)), None),
            (reqwest::Method::GET, format!("/api/attachments/{}/content", urlencode(s)), None),
            (reqwest::Method::POST, format!("/api/notifications/{}/read", urlencode(s)), None),
        ];
        for (method, path, body) in requests {
            let (status, v) = app.try_call(method.clone(), &path, Some(&admin.token), body).await;
            checked += 1;
            assert!(status.as_u16() < 500, "{method} {path} with {s:?} answered {status}: {v}");
            if status.is_client_error() && status != StatusCode::NOT_FOUND
                || status == StatusCode::NOT_FOUND && path.starts_with("/api/")
            {
                assert!(v["code"].is_string(), "{method} {path} with {s:?}: {status} without an error body: {v}");
            }
        }
    }
    app.get("/api/users/me", &admin, 200).await;
    println!("hostile strings: {checked} requests, none answered 5xx");
}
