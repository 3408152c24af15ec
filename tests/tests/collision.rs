//! Collision protection: a public reply says what its author had seen, and the server refuses
//! it, writing nothing, when someone else's public activity arrived since.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use serde_json::{Value, json};

async fn comment_count(app: &common::TestApp, who: &common::Actor, tid: &str) -> usize {
    app.get(&format!("/api/tickets/{tid}/comments"), who, 200).await["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn two_agents_reply_to_the_same_version_one_lands_the_other_sees_what_it_missed() {
    let app = common::spawn_app().await;
    let (c, a1, a2) = (app.customer("Cleo").await, app.agent("Alex").await, app.agent("Bo").await);
    let t = app.ticket(&c, "Printer").await;
    let tid = t["id"].as_str().unwrap();
    let seen = t["version"].as_i64().unwrap();
    let path = format!("/api/tickets/{tid}/comments");

    let first = app.post(&path, &a1, json!({"content": "Try turning it off", "seen_version": seen}), 201).await;
    let refused = app.post(&path, &a2, json!({"content": "Replace the toner", "seen_version": seen}), 409).await;
    assert_eq!(refused["code"], "new_activity");
    let missed = refused["missed"].as_array().unwrap();
    assert_eq!(missed.len(), 1, "{refused}");
    assert_eq!(missed[0]["data"]["id"], first["id"]);
    assert_eq!(missed[0]["data"]["content"], "Try turning it off");
    assert_eq!(comment_count(&app, &a2, tid).await, 1, "the refused reply was written");

    // Resent from the new position, it lands.
    let position = refused["position"].as_i64().unwrap();
    app.post(&path, &a2, json!({"content": "Replace the toner", "seen_event_id": position}), 201).await;
    assert_eq!(comment_count(&app, &a2, tid).await, 2);
}

#[tokio::test]
async fn internal_notes_own_activity_and_edits_never_block() {
    let app = common::spawn_app().await;
    let (c, a1, a2) = (app.customer("Cleo").await, app.agent("Alex").await, app.agent("Bo").await);
    let t = app.ticket(&c, "Router").await;
    let tid = t["id"].as_str().unwrap();
    let seen = t["version"].as_i64().unwrap();
    let path = format!("/api/tickets/{tid}/comments");
    // Others' internal notes and priority changes are not public activity.
    app.post(&path, &a1, json!({"content": "note", "internal": true}), 201).await;
    app.patch(&format!("/api/tickets/{tid}"), &a1, json!({"priority": "high"}), 200).await;
    // One's own public reply is not a collision with oneself.
    app.post(&path, &a2, json!({"content": "first", "seen_version": seen}), 201).await;
    app.post(&path, &a2, json!({"content": "second", "seen_version": seen}), 201).await;
    // A status change by someone else is; an internal note is still never blocked.
    app.patch(&format!("/api/tickets/{tid}"), &a1, json!({"status": "pending"}), 200).await;
    let refused = app.post(&path, &a2, json!({"content": "third", "seen_version": seen}), 409).await;
    assert!(refused["missed"].as_array().unwrap().iter().any(|e| e["data"]["status"] == "pending"), "{refused}");
    app.post(&path, &a2, json!({"content": "internal", "internal": true, "seen_version": seen}), 201).await;
}

#[tokio::test]
async fn a_customer_is_shown_only_what_it_may_read_and_bad_positions_are_refused() {
    let app = common::spawn_app().await;
    let (c, a1) = (app.customer("Cleo").await, app.agent("Alex").await);
    let t = app.ticket(&c, "VPN").await;
    let tid = t["id"].as_str().unwrap();
    let path = format!("/api/tickets/{tid}/comments");
    let start = app.get("/api/events?after=0&limit=500", &c, 200).await;
    let seen = start.as_array().unwrap().last().unwrap()["event_id"].as_i64().unwrap();
    app.post(&path, &a1, json!({"content": "secret note", "internal": true}), 201).await;
    app.post(&path, &a1, json!({"content": "public answer"}), 201).await;
    let refused = app.post(&path, &c, json!({"content": "thanks", "seen_event_id": seen}), 409).await;
    let text = refused.to_string();
    assert!(text.contains("public answer") && !text.contains("secret note"), "{text}");

    let bad: Vec<(Value, u16)> = vec![
        (json!({"content": "x", "seen_version": 99}), 422),
        (json!({"content": "x", "seen_event_id": -1}), 422),
        (json!({"content": "x", "seen_version": "one"}), 422),
    ];
    for (body, status) in bad {
        let e = app.post(&path, &c, body.clone(), status).await;
        assert_eq!(e["code"], "validation", "{body}");
    }
    assert_eq!(comment_count(&app, &c, tid).await, 1);
}

#[tokio::test]
async fn of_many_concurrent_replies_from_one_position_exactly_one_lands() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let mut agents = Vec::new();
    for i in 0..6 {
        agents.push(app.agent(&format!("Agent {i}")).await);
    }
    let t = app.ticket(&c, "Race").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let seen = t["version"].as_i64().unwrap();
    let answers = futures::future::join_all(agents.iter().map(|a| {
        let path = format!("/api/tickets/{tid}/comments");
        let body = json!({"content": format!("from {}", a.name), "seen_version": seen});
        let app = &app;
        async move { app.try_call(reqwest::Method::POST, &path, Some(&a.token), Some(body)).await.0.as_u16() }
    }))
    .await;
    let landed = answers.iter().filter(|s| **s == 201).count();
    assert_eq!(landed, 1, "{answers:?}");
    assert!(answers.iter().all(|s| *s == 201 || *s == 409), "{answers:?}");
    assert_eq!(comment_count(&app, &c, &tid).await, 1);
}
