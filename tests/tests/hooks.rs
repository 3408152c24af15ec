//! The hooks layer seen through REST: events in the same transaction, notifications to the right
//! people, and a dispatcher that resumes after a restart.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use serde_json::{Value, json};

async fn notifications(app: &common::TestApp, who: &common::Actor) -> Vec<Value> {
    app.get("/api/notifications?limit=200", who, 200).await["items"].as_array().unwrap().clone()
}

async fn wait_for_count(app: &common::TestApp, who: &common::Actor, n: usize) -> Vec<Value> {
    app.eventually(|| async {
        let list = notifications(app, who).await;
        (list.len() >= n).then_some(list)
    })
    .await
}

#[tokio::test]
async fn every_change_has_one_event_with_the_full_entity() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let t = app.ticket(&c, "Printer on fire").await;
    let tid = t["id"].as_str().unwrap();
    let t2 = app.patch(&format!("/api/tickets/{tid}"), &app.admin, json!({"status": "pending"}), 200).await;
    let events = app.get("/api/events?limit=500", &app.admin, 200).await;
    let ticket_events: Vec<_> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "ticket").collect();
    assert_eq!(ticket_events.len(), 2);
    assert_eq!(ticket_events[0]["action"], "created");
    assert_eq!(ticket_events[0]["data"], t);
    assert_eq!(ticket_events[1]["data"], t2);
    assert!(ticket_events[0]["event_id"].as_i64() < ticket_events[1]["event_id"].as_i64());
    let after = ticket_events[0]["event_id"].as_i64().unwrap();
    let later = app.get(&format!("/api/events?after={after}"), &app.admin, 200).await;
    assert_eq!(later[0]["event_id"].as_i64().unwrap(), ticket_events[1]["event_id"].as_i64().unwrap());
    app.get("/api/events?limit=0", &app.admin, 422).await;
    // The customer sees their ticket's events but not the user-management ones.
    let mine = app.get("/api/events", &c, 200).await;
    assert!(mine.as_array().unwrap().iter().all(|e| e["kind"] != "user" || e["entity_id"] == c.id.as_str()));
}

#[tokio::test]
async fn notifications_reach_the_right_people_once_and_never_the_actor() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Printer on fire").await;
    let tid = t["id"].as_str().unwrap();
    let admin_notes = app
        .eventually(|| async {
            let list = notifications(&app, &app.admin).await;
            list.iter().any(|n| n["type"] == "new_ticket").then_some(list)
        })
        .await;
    let new_tickets: Vec<_> = admin_notes.iter().filter(|n| n["type"] == "new_ticket").collect();
    assert_eq!(new_tickets.len(), 1);
    assert_eq!(new_tickets[0]["related_id"], tid);
    assert_eq!(new_tickets[0]["message"], "New ticket 'Printer on fire' from Cleo");
    assert!(notifications(&app, &c).await.iter().all(|n| n["type"] != "new_ticket"), "actor not notified");

    app.patch(&format!("/api/tickets/{tid}"), &agent, json!({"assignee_id": agent.id}), 200).await;
    let cn = wait_for_count(&app, &c, 1).await;
    assert_eq!(cn[0]["type"], "ticket_updated");
    assert!(notifications(&app, &agent).await.is_empty(), "the assignee made the change: not notified");

    app.post(&format!("/api/tickets/{tid}/comments"), &agent, json!({"content": "Looking"}), 201).await;
    let cn = wait_for_count(&app, &c, 2).await;
    assert_eq!(cn[0]["type"], "comment_on_ticket");
    assert_eq!(cn[0]["message"], "New comment on your ticket 'Printer on fire' by Agnes");
    assert_eq!(cn[0]["related_type"], "comment");
    assert_eq!(cn[0]["ticket_id"], tid);
    assert_eq!(cn[0]["actor_id"], agent.id.as_str());

    // Internal notes notify staff only.
    let before = notifications(&app, &c).await.len();
    app.post(&format!("/api/tickets/{tid}/comments"), &app.admin, json!({"content": "VIP", "internal": true}), 201)
        .await;
    let an = wait_for_count(&app, &agent, 1).await;
    assert_eq!(an[0]["type"], "comment_on_ticket");
    assert_eq!(notifications(&app, &c).await.len(), before);

    // Unread count, mark one read, read all.
    let count = app.get("/api/notifications/unread-count", &c, 200).await;
    assert_eq!(count, json!({ "count": 2, "more": false }), "counted up to 10,000, with whether there are more");
    let first = notifications(&app, &c).await[0]["id"].as_str().unwrap().to_string();
    let marked = app.post(&format!("/api/notifications/{first}/read"), &c, json!({}), 200).await;
    assert_eq!(marked["read"], true);
    app.post(&format!("/api/notifications/{first}/read"), &agent, json!({}), 404).await;
    assert_eq!(app.get("/api/notifications/unread-count", &c, 200).await["count"], 1);
    assert_eq!(app.get("/api/notifications?unread=true", &c, 200).await["items"].as_array().unwrap().len(), 1);
    app.post("/api/notifications/read-all", &c, json!({}), 200).await;
    assert_eq!(app.get("/api/notifications/unread-count", &c, 200).await["count"], 0);
}

#[tokio::test]
async fn dispatcher_resumes_after_restart_without_duplicates() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    for i in 0..5 {
        app.ticket(&c, &format!("t{i}")).await;
    }
    wait_for_count(&app, &app.admin, 5).await;
    let admin = app.admin.clone();
    let config = app.stop().await;
    // Changes made while no server runs (the CLI writes through the same domain path).
    ticketwire::cli::create_user(
        &config,
        "late@example.com",
        "password123",
        "Late Comer",
        ticketwire::auth::Role::Customer,
    )
    .await
    .unwrap();
    let app = common::spawn_config(config).await;
    let notes = app
        .eventually(|| async {
            let list = notifications(&app, &admin).await;
            list.iter()
                .any(|n| n["type"] == "user_created" && n["message"].as_str().unwrap().contains("Late Comer"))
                .then_some(list)
        })
        .await;
    let new_tickets = notes.iter().filter(|n| n["type"] == "new_ticket").count();
    assert_eq!(new_tickets, 5, "nothing derived twice after restart");
}
