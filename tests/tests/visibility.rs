//! The visibility policy over REST: who a ticket is in the name of, what customers may set and
//! read, and the event log following the present.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn a_customer_opens_tickets_in_its_own_name_only() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let before = app.get("/api/tickets", &agent, 200).await["items"].as_array().unwrap().len();
    for body in [
        json!({"subject": "x", "requester_email": app.admin.email}),
        json!({"subject": "x", "requester_id": app.admin.id}),
        json!({"subject": "x", "metadata": {"raw": {"a": 1}}}),
        json!({"subject": "x", "category": "billing"}),
        json!({"subject": "x", "external_id": "ext-1"}),
    ] {
        let refused = app.post("/api/tickets", &c, body.clone(), 403).await;
        assert_eq!(refused["code"], "forbidden", "{body}");
    }
    // Nothing was written by the refused requests.
    assert_eq!(app.get("/api/tickets", &agent, 200).await["items"].as_array().unwrap().len(), before);

    let own =
        app.post("/api/tickets", &c, json!({"subject": "mine", "requester_email": c.email.to_uppercase()}), 201).await;
    assert_eq!(own["requester_id"], c.id.as_str());
    assert_eq!(own["requester_email"], c.email.as_str());
    let plain = app.post("/api/tickets", &c, json!({"subject": "plain"}), 201).await;
    assert_eq!(plain["requester_email"], c.email.as_str(), "staff must see who opened it");

    // Staff opening a ticket for a customer get that customer's address, not one they typed.
    let for_c = app
        .post(
            "/api/tickets",
            &agent,
            json!({"subject": "for Cleo", "requester_id": c.id, "requester_email": "x@evil.test"}),
            201,
        )
        .await;
    assert_eq!(for_c["requester_email"], c.email.as_str());
}

#[tokio::test]
async fn customers_do_not_read_what_an_integration_sent() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let t = app
        .post(
            "/api/tickets",
            &app.admin,
            json!({"subject": "alert", "requester_id": c.id, "metadata": {"raw": {"api_key": "s3cr3t"}, "host": "db1"}}),
            201,
        )
        .await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/tickets/{id}"), &app.admin, 200).await["metadata"]["raw"]["api_key"], "s3cr3t");
    let seen = app.get(&format!("/api/tickets/{id}"), &c, 200).await;
    assert_eq!(seen["metadata"], json!({"host": "db1"}));
    let changed = app.patch(&format!("/api/tickets/{id}"), &c, json!({"subject": "alert!"}), 200).await;
    assert!(changed["metadata"].get("raw").is_none());
    for path in ["/api/tickets", "/api/events?after=0&limit=500"] {
        let body = app.get(path, &c, 200).await.to_string();
        assert!(!body.contains("s3cr3t"), "{path} leaked metadata.raw");
    }
}

fn content_of(events: &Value, entity_id: &str) -> Vec<Value> {
    events.as_array().unwrap().iter().filter(|e| e["entity_id"] == entity_id).map(|e| e["data"].clone()).collect()
}

#[tokio::test]
async fn the_event_log_follows_the_present() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let other = app.customer("Otto").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Printer").await;
    let tid = t["id"].as_str().unwrap();
    let comment =
        app.post(&format!("/api/tickets/{tid}/comments"), &agent, json!({"content": "public once"}), 201).await;
    let cid = comment["id"].as_str().unwrap();

    // Made internal: the customer's log keeps only a redaction, for every event of it.
    app.patch(&format!("/api/comments/{cid}"), &agent, json!({"internal": true}), 200).await;
    let events = app
        .eventually(|| async {
            let e = app.get("/api/events?after=0&limit=500", &c, 200).await;
            (content_of(&e, cid).len() >= 2).then_some(e)
        })
        .await;
    for data in content_of(&events, cid) {
        let mut keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["deleted", "id", "ticket_id", "version"], "{data}");
        assert_eq!((data["id"].as_str(), data["ticket_id"].as_str()), (Some(cid), Some(tid)));
    }
    // Staff still read it in full.
    let staff = app.get("/api/events?after=0&limit=500", &agent, 200).await;
    assert!(content_of(&staff, cid).iter().all(|d| d["content"] == "public once"));

    // Moved to another customer: the former requester keeps no content of the ticket.
    app.patch(&format!("/api/tickets/{tid}"), &agent, json!({"requester_id": other.id}), 200).await;
    let events = app.get("/api/events?after=0&limit=500", &c, 200).await;
    let of_ticket: Vec<&Value> = events.as_array().unwrap().iter().filter(|e| e["ticket_id"] == tid).collect();
    assert!(!of_ticket.is_empty());
    for e in of_ticket {
        assert_eq!(e["action"], "deleted", "{e}");
        assert!(e["data"].get("subject").is_none() && e["actor_id"].is_null(), "{e}");
    }
    let readable = app.get("/api/events?after=0&limit=500", &other, 200).await.to_string();
    assert!(!readable.contains("public once"));
}

#[tokio::test]
async fn a_short_page_of_the_log_means_its_end() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t = app.ticket(&c, "Busy ticket").await;
    let tid = t["id"].as_str().unwrap();
    // Many events the customer may not see, between two it may.
    for i in 0..12 {
        app.post(
            &format!("/api/tickets/{tid}/comments"),
            &agent,
            json!({"content": format!("note {i}"), "internal": true}),
            201,
        )
        .await;
    }
    let last = app.post(&format!("/api/tickets/{tid}/comments"), &agent, json!({"content": "public"}), 201).await;
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = app.get(&format!("/api/events?after={after}&limit=2"), &c, 200).await;
        let items = page.as_array().unwrap().clone();
        seen.extend(items.iter().map(|e| e["entity_id"].as_str().unwrap().to_string()));
        if items.len() < 2 {
            break;
        }
        after = items.last().unwrap()["event_id"].as_i64().unwrap();
    }
    assert!(seen.contains(&last["id"].as_str().unwrap().to_string()), "paging stopped before the public reply");
}
