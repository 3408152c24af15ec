//! Knowledge-base articles: drafts for staff, published ones for everyone.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn drafts_publish_and_search() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    app.post("/api/kb/articles", &c, json!({"title": "x"}), 403).await;
    let draft = app
        .post("/api/kb/articles", &agent, json!({"title": "Resetting the VPN", "body": "Turn it off and on"}), 201)
        .await;
    assert_eq!(draft["status"], "draft");
    let id = draft["id"].as_str().unwrap();
    app.call(Method::GET, &format!("/api/kb/articles/{id}"), None, None, 404).await;
    app.get(&format!("/api/kb/articles/{id}"), &c, 404).await;
    let anon = app.call(Method::GET, "/api/kb/articles", None, None, 200).await;
    assert!(anon["items"].as_array().unwrap().is_empty());

    let published = app.patch(&format!("/api/kb/articles/{id}"), &agent, json!({"status": "published"}), 200).await;
    assert!(published["published_at"].is_string());
    let anon = app.call(Method::GET, "/api/kb/articles?q=vpn", None, None, 200).await;
    assert_eq!(anon["items"].as_array().unwrap().len(), 1);
    let none = app.call(Method::GET, "/api/kb/articles?q=printer", None, None, 200).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    // Customers cannot ask for drafts.
    let drafts = app.get("/api/kb/articles?status=draft", &c, 200).await;
    assert!(drafts["items"].as_array().unwrap().iter().all(|a| a["status"] == "published"));
    app.patch(&format!("/api/kb/articles/{id}"), &c, json!({"title": "mine"}), 403).await;
    app.call(Method::DELETE, &format!("/api/kb/articles/{id}"), None, None, 401).await;
    app.delete(&format!("/api/kb/articles/{id}"), &agent, 204).await;
    app.call(Method::GET, &format!("/api/kb/articles/{id}"), None, None, 404).await;
}
