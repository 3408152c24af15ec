//! Attachments: byte-for-byte round trip, limits, hostile names and access.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn upload(
    app: &common::TestApp,
    who: &common::Actor,
    ticket: &str,
    name: &str,
    bytes: Vec<u8>,
    mime: &str,
) -> (u16, Value) {
    let part = Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{ticket}/attachments")))
        .bearer_auth(&who.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn round_trip_byte_for_byte() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Help").await;
    let tid = t["id"].as_str().unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, a) = upload(&app, &c, tid, "crash log.bin", bytes.clone(), "application/octet-stream").await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["size_bytes"], 300_000);
    let id = a["id"].as_str().unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    let list = app.get(&format!("/api/tickets/{tid}/attachments"), &c, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let renamed = app.patch(&format!("/api/attachments/{id}"), &c, json!({"filename": "../../renamed.txt"}), 200).await;
    assert_eq!(renamed["filename"], "renamed.txt");
    assert_eq!(renamed["version"], 2);

    // Replace the content.
    let part = Part::bytes(b"new content".to_vec()).file_name("x.txt").mime_str("text/plain").unwrap();
    let resp = app
        .client
        .put(app.url(&format!("/api/attachments/{id}/content")))
        .bearer_auth(&c.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got =
        app.client.get(app.url(&format!("/api/attachments/{id}/content"))).bearer_auth(&c.token).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"new content");

    app.delete(&format!("/api/attachments/{id}"), &c, 204).await;
    app.get(&format!("/api/attachments/{id}"), &c, 404).await;
}

#[tokio::test]
async fn limits_names_and_access() {
    let app = common::spawn_app().await; // upload limit: 1 MiB in tests
    let a = app.customer("Alice").await;
    let b = app.customer("Bob").await;
    let t = app.ticket(&a, "Help").await;
    let tid = t["id"].as_str().unwrap();

    let (status, e) = upload(&app, &a, tid, "big.bin", vec![0u8; 1024 * 1024 + 1], "application/octet-stream").await;
    assert_eq!(status, 413, "{e}");
    assert_eq!(e["code"], "payload_too_large");
    let (status, _) = upload(&app, &a, tid, "exact.bin", vec![1u8; 1024 * 1024], "application/octet-stream").await;
    assert_eq!(status, 201);

    for hostile in ["../../etc/passwd", "..\\..\\win.ini", "ünïcödé ✓.txt", "<script>.html", "..", "%2e%2e%2fx"] {
        let (status, v) = upload(&app, &a, tid, hostile, b"x".to_vec(), "text/html").await;
        assert_eq!(status, 201, "{hostile}: {v}");
        let name = v["filename"].as_str().unwrap();
        assert!(!name.contains('/') && !name.contains('\\') && !name.contains("..") && !name.contains('\n'), "{name}");
    }
    // A name that breaks the multipart header itself is a clear 400, and stores nothing.
    let before = app.get(&format!("/api/tickets/{tid}/attachments"), &a, 200).await.as_array().unwrap().len();
    let (status, e) = upload(&app, &a, tid, "a\r\nb.txt", b"x".to_vec(), "text/plain").await;
    assert!(status == 400 || status == 201, "{status} {e}");
    let after = app.get(&format!("/api/tickets/{tid}/attachments"), &a, 200).await.as_array().unwrap().len();
    assert_eq!(after, before + usize::from(status == 201));
    // Not readable → cannot upload, list, read or download.
    let (status, _) = upload(&app, &b, tid, "x.txt", b"x".to_vec(), "text/plain").await;
    assert_eq!(status, 404);
    app.get(&format!("/api/tickets/{tid}/attachments"), &b, 404).await;
    let list = app.get(&format!("/api/tickets/{tid}/attachments"), &a, 200).await;
    let some = list[0]["id"].as_str().unwrap();
    app.get(&format!("/api/attachments/{some}"), &b, 404).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/attachments/{some}/content")))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app.client.get(app.url(&format!("/api/attachments/{some}/content"))).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // A form without a `file` field.
    let resp = app
        .client
        .post(app.url(&format!("/api/tickets/{tid}/attachments")))
        .bearer_auth(&a.token)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}
