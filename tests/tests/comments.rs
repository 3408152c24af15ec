//! Comments, replies and internal notes.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use serde_json::json;

#[tokio::test]
async fn internal_notes_are_invisible_to_customers() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Help").await;
    let tid = t["id"].as_str().unwrap();
    let public = app.post(&format!("/api/tickets/{tid}/comments"), &agent, json!({"content": "On it"}), 201).await;
    let note = app
        .post(
            &format!("/api/tickets/{tid}/comments"),
            &agent,
            json!({"content": "customer is VIP", "internal": true}),
            201,
        )
        .await;
    let reply = app
        .post(
            &format!("/api/tickets/{tid}/comments"),
            &agent,
            json!({"content": "agreed", "parent_id": note["id"]}),
            201,
        )
        .await;
    assert_eq!(reply["internal"], true, "a reply in an internal thread stays internal");

    let seen = app.get(&format!("/api/tickets/{tid}/comments"), &c, 200).await;
    let ids: Vec<_> = seen["items"].as_array().unwrap().iter().map(|x| x["id"].clone()).collect();
    assert_eq!(ids, vec![public["id"].clone()]);
    app.get(&format!("/api/comments/{}", note["id"].as_str().unwrap()), &c, 404).await;
    app.post(&format!("/api/tickets/{tid}/comments"), &c, json!({"content": "x", "internal": true}), 403).await;
    app.post(&format!("/api/tickets/{tid}/comments"), &c, json!({"content": "x", "parent_id": note["id"]}), 422).await;
    // Customers see no events about internal notes either.
    let events = app.get("/api/events", &c, 200).await;
    for e in events.as_array().unwrap() {
        assert_ne!(e["data"]["internal"], true, "internal note leaked through events: {e}");
    }
    let staff = app.get(&format!("/api/tickets/{tid}/comments"), &agent, 200).await;
    assert_eq!(staff["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn edit_and_delete_rules() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let other = app.customer("Olga").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Help").await;
    let tid = t["id"].as_str().unwrap();
    let mine = app.post(&format!("/api/tickets/{tid}/comments"), &c, json!({"content": "first"}), 201).await;
    let reply = app
        .post(
            &format!("/api/tickets/{tid}/comments"),
            &agent,
            json!({"content": "answer", "parent_id": mine["id"]}),
            201,
        )
        .await;
    assert_eq!(reply["parent_id"], mine["id"]);
    let cid = mine["id"].as_str().unwrap();
    let edited = app.patch(&format!("/api/comments/{cid}"), &c, json!({"content": "first, edited"}), 200).await;
    assert_eq!(edited["version"], 2);
    app.patch(&format!("/api/comments/{cid}"), &c, json!({"internal": true}), 403).await;
    app.patch(&format!("/api/comments/{cid}"), &other, json!({"content": "hijack"}), 404).await;
    app.patch(&format!("/api/comments/{}", reply["id"].as_str().unwrap()), &c, json!({"content": "hijack"}), 403).await;
    app.patch(&format!("/api/comments/{cid}"), &c, json!({"content": ""}), 422).await;
    app.delete(&format!("/api/comments/{cid}"), &c, 204).await;
    let after = app.get(&format!("/api/comments/{}", reply["id"].as_str().unwrap()), &agent, 200).await;
    assert!(after["parent_id"].is_null(), "replies stay, detached");
    app.get(&format!("/api/tickets/{tid}/comments?limit=500"), &c, 422).await;
}
