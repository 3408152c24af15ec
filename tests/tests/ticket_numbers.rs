//! Ticket numbers (`#1042`): one per ticket, unique, from every path that opens tickets (API
//! creations committed together, ingestion), kept across updates, and a filter.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

#[tokio::test]
async fn every_ticket_gets_its_own_number() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;

    // Creations that arrive together are committed together; each still gets its own number.
    let made = futures::future::join_all((0..40).map(|i| {
        let (app, c) = (&app, &c);
        async move { app.post("/api/tickets", c, json!({"subject": format!("burst {i}")}), 201).await }
    }))
    .await;
    // Ingested tickets too (the web-client's import goes through the batch route).
    let batch = app
        .post(
            "/api/integrations/webhook/batch",
            &agent,
            json!([{"title": "imported one", "id": "ext-1"}, {"title": "imported two", "id": "ext-2"}]),
            200,
        )
        .await;
    assert_eq!(batch["created_count"], 2, "{batch}");

    let list = app.get("/api/tickets?limit=200", &agent, 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 42);
    let numbers: BTreeSet<i64> = items.iter().map(|t| t["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers.len(), 42, "numbers are unique");
    assert!(numbers.iter().all(|n| *n > 1000), "numbers start after 1000: {numbers:?}");
    for t in &made {
        assert!(numbers.contains(&t["number"].as_i64().unwrap()), "the creation answered with its number");
    }

    // An update keeps the number; the filter finds it.
    let first = &made[0];
    let (id, number) = (first["id"].as_str().unwrap(), first["number"].as_i64().unwrap());
    let updated = app.patch(&format!("/api/tickets/{id}"), &agent, json!({"priority": "high"}), 200).await;
    assert_eq!(updated["number"], number);
    let found = app.get(&format!("/api/tickets?number={number}"), &agent, 200).await;
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id]);
    let found = app.get(&format!("/api/tickets?q=%23{number}"), &agent, 200).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "q=#{number}: {found}");
    assert_eq!(found["items"][0]["id"], id);
    // A customer's filter stays within their own tickets.
    let other = app.customer("Other").await;
    let none = app.get(&format!("/api/tickets?number={number}"), &other, 200).await;
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn staff_see_who_opened_a_ticket() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo Customer").await;
    let agent = app.agent("Agnes").await;
    let t = app.post("/api/tickets", &c, json!({"subject": "Printer on fire"}), 201).await;
    assert_eq!(t["requester_name"], "Cleo Customer");
    assert_eq!(t["requester_email"], c.email.as_str());
    let id = t["id"].as_str().unwrap();
    // The event carries it too, so live views show it.
    let events = app.get("/api/events?limit=500", &agent, 200).await;
    let created: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ticket" && e["entity_id"] == id && e["action"] == "created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["requester_name"], "Cleo Customer");
    // Lists and reads name the requester too.
    let one = app.get(&format!("/api/tickets/{id}"), &agent, 200).await;
    assert_eq!(one["requester_name"], "Cleo Customer");
    let list = app.get("/api/tickets", &agent, 200).await;
    assert_eq!(list["items"][0]["requester_name"], "Cleo Customer");
    // An update by staff keeps it.
    let t = app.patch(&format!("/api/tickets/{id}"), &agent, json!({"status": "in_progress"}), 200).await;
    assert_eq!(t["requester_name"], "Cleo Customer");
    // Staff opening a ticket for someone else name them.
    let t = app.post("/api/tickets", &agent, json!({"subject": "for Cleo", "requester_id": c.id}), 201).await;
    assert_eq!(t["requester_name"], "Cleo Customer");
}
