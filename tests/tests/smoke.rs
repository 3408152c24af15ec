#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use serde_json::json;

#[tokio::test]
async fn health_and_openapi() {
    let app = common::spawn_app().await;
    let v = app.call(reqwest::Method::GET, "/healthz", None, None, 200).await;
    assert_eq!(v["status"], "ok");
    let spec = app.call(reqwest::Method::GET, "/api/openapi.json", None, None, 200).await;
    assert!(spec["paths"]["/api/tickets"].is_object());
    let c = app.customer("Cleo").await;
    let t = app.post("/api/tickets", &c, json!({"title": "Printer on fire"}), 201).await;
    assert_eq!(t["subject"], "Printer on fire");
}
