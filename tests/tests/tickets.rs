//! Tickets: CRUD, visibility, filters, pagination, concurrency and validation.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn ticket_crud_and_versioning() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agent = app.agent("Agnes").await;
    let t = app
        .post(
            "/api/tickets",
            &c,
            json!({"title": "Printer on fire", "description": "smoke", "priority": "high", "tags": ["hw", "hw"]}),
            201,
        )
        .await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["status"], "open");
    assert_eq!(t["requester_id"], c.id.as_str());
    assert_eq!(t["source"], "web");
    assert_eq!(t["tags"], json!(["hw"]));
    assert_eq!(t["version"], 1);
    assert!(uuid::Uuid::parse_str(id).unwrap().get_version_num() == 7);

    let t2 = app
        .patch(&format!("/api/tickets/{id}"), &agent, json!({"status": "resolved", "assignee_id": agent.id}), 200)
        .await;
    assert_eq!(t2["version"], 2);
    assert!(t2["resolved_at"].is_string());
    assert_eq!(t2["assignee_id"], agent.id.as_str());
    let t3 =
        app.patch(&format!("/api/tickets/{id}"), &agent, json!({"status": "open", "assignee_id": null}), 200).await;
    assert!(t3["resolved_at"].is_null());
    assert!(t3["assignee_id"].is_null());

    // If-Match with a stale version → 409, nothing written.
    let resp = app
        .client
        .patch(app.url(&format!("/api/tickets/{id}")))
        .bearer_auth(&agent.token)
        .header("if-match", "\"1\"")
        .json(&json!({"subject": "changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let now = app.get(&format!("/api/tickets/{id}"), &c, 200).await;
    assert_eq!(now["subject"], "Printer on fire");
    let resp = app
        .client
        .patch(app.url(&format!("/api/tickets/{id}")))
        .bearer_auth(&agent.token)
        .header("if-match", "3")
        .json(&json!({"subject": "Printer smouldering"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    app.delete(&format!("/api/tickets/{id}"), &c, 403).await;
    app.delete(&format!("/api/tickets/{id}"), &agent, 204).await;
    app.get(&format!("/api/tickets/{id}"), &agent, 404).await;
}

#[tokio::test]
async fn customers_see_only_their_own_tickets() {
    let app = common::spawn_app().await;
    let a = app.customer("Alice").await;
    let b = app.customer("Bob").await;
    let agent = app.agent("Agnes").await;
    let ta = app.ticket(&a, "Alice's").await;
    let tb = app.ticket(&b, "Bob's").await;
    let id_a = ta["id"].as_str().unwrap();
    // B cannot read, change or comment on A's ticket, and sees 404 (not 403), so nothing leaks.
    app.get(&format!("/api/tickets/{id_a}"), &b, 404).await;
    app.patch(&format!("/api/tickets/{id_a}"), &b, json!({"subject": "mine now"}), 404).await;
    app.post(&format!("/api/tickets/{id_a}/comments"), &b, json!({"content": "hi"}), 404).await;
    let list_b = app.get("/api/tickets", &b, 200).await;
    let ids: Vec<_> = list_b["items"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
    assert_eq!(ids, vec![tb["id"].clone()]);
    // Filtering by someone else's requester id gives nothing to a customer.
    let l = app.get(&format!("/api/tickets?requester_id={}", a.id), &b, 200).await;
    assert!(l["items"].as_array().unwrap().is_empty());
    let all = app.get("/api/tickets", &agent, 200).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    // Customers cannot assign, set status beyond close/reopen, or open tickets for others.
    app.patch(&format!("/api/tickets/{id_a}"), &a, json!({"assignee_id": agent.id}), 403).await;
    app.patch(&format!("/api/tickets/{id_a}"), &a, json!({"status": "in_progress"}), 403).await;
    app.patch(&format!("/api/tickets/{id_a}"), &a, json!({"status": "closed"}), 200).await;
    app.post("/api/tickets", &a, json!({"subject": "x", "requester_id": b.id}), 403).await;
    // Staff may open tickets for a customer.
    let t = app.post("/api/tickets", &agent, json!({"subject": "for Bob", "requester_id": b.id}), 201).await;
    assert_eq!(t["requester_id"], b.id.as_str());
    app.get(&format!("/api/tickets/{}", t["id"].as_str().unwrap()), &b, 200).await;
}

#[tokio::test]
async fn filters_search_and_pagination_without_gaps() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let mut made = Vec::new();
    for i in 0..23 {
        let priority = if i % 2 == 0 { "low" } else { "urgent" };
        let subject = if i % 5 == 0 { format!("VPN down {i}") } else { format!("Other {i}") };
        let t = app.post("/api/tickets", &agent, json!({"subject": subject, "priority": priority}), 201).await;
        made.push(t["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/tickets?limit=5&cursor={cursor}"), &agent, 200).await;
        // Insert between pages: must not disturb the walk.
        app.post("/api/tickets", &agent, json!({"subject": "late arrival"}), 201).await;
        for t in page["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut expected = made.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, no duplicates, no gaps");

    let urgent = app.get("/api/tickets?priority=urgent&limit=200", &agent, 200).await;
    assert_eq!(urgent["items"].as_array().unwrap().len(), 11);
    let vpn = app.get("/api/tickets?q=vpn%20DOWN", &agent, 200).await;
    assert_eq!(vpn["items"].as_array().unwrap().len(), 5);
    let pct = app.get("/api/tickets?q=%25", &agent, 200).await;
    assert!(pct["items"].as_array().unwrap().is_empty(), "LIKE wildcards are escaped");
    let e = app.get("/api/tickets?priority=extreme", &agent, 422).await;
    assert_eq!(e["code"], "validation");
    app.get("/api/tickets?limit=0", &agent, 422).await;
    app.get("/api/tickets?cursor=not-a-cursor", &agent, 422).await;
}

#[tokio::test]
async fn validation_errors_name_the_field_and_write_nothing() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let cases = [
        (json!({"description": "no subject"}), "subject"),
        (json!({"subject": "   "}), "subject"),
        (json!({"subject": "x".repeat(1_000_000)}), "subject"),
        (json!({"subject": "nul \u{0} byte"}), "subject"),
        (json!({"subject": "ok", "priority": "extreme"}), "priority"),
        (json!({"subject": "ok", "tags": (0..60).map(|i| format!("t{i}")).collect::<Vec<_>>()}), "tags"),
        (json!({"subject": "ok", "unknown_field": 1}), "unknown_field"),
    ];
    for (body, field) in cases {
        let (status, e) = app.try_call(Method::POST, "/api/tickets", Some(&c.token), Some(body)).await;
        assert!(status == 422 || status == 413, "{field}: {status} {e}");
        if status == 422 {
            assert_eq!(e["code"], "validation");
            assert!(e["detail"].as_str().unwrap().contains(field), "{field}: {e}");
        }
    }
    let list = app.get("/api/tickets", &c, 200).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let events = app.get("/api/events", &app.admin, 200).await;
    assert!(events.as_array().unwrap().iter().all(|e| e["kind"] != "ticket"), "no event for a refused write");
}

#[tokio::test]
async fn assignee_must_be_active_staff() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    let t = app.ticket(&c, "Help").await;
    let id = t["id"].as_str().unwrap();
    app.patch(&format!("/api/tickets/{id}"), &agent, json!({"assignee_id": c.id}), 422).await;
    app.patch(&format!("/api/tickets/{id}"), &agent, json!({"assignee_id": "not-an-id"}), 422).await;
    app.delete(&format!("/api/users/{}", agent.id), &app.admin, 200).await;
    app.patch(&format!("/api/tickets/{id}"), &app.admin, json!({"assignee_id": agent.id}), 422).await;
}

/// Creations that arrive together are committed together (group commit). One of them taking an
/// `external_id` already taken must fail alone, with 409, while the others land, each with
/// exactly one event carrying the ticket the API answered with.
#[tokio::test]
async fn concurrent_creations_commit_together_and_a_duplicate_fails_alone() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let bodies: Vec<_> = (0..40)
        .map(|i| {
            let external_id = if i % 8 == 0 { "DUP-1".to_string() } else { format!("UNIQUE-{i}") };
            json!({"subject": format!("burst {i}"), "source": "import", "external_id": external_id})
        })
        .collect();
    let answers = futures::future::join_all(
        bodies.iter().map(|b| app.try_call(Method::POST, "/api/tickets", Some(&agent.token), Some(b.clone()))),
    )
    .await;
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, t)| t.clone()).collect();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert_eq!(created.len(), 36, "35 unique and one of the five duplicates: {refused:?}");
    assert_eq!(refused.len(), 4);
    for (status, e) in &refused {
        assert_eq!((status.as_u16(), e["code"].as_str()), (409, Some("conflict")), "{e}");
    }
    assert_eq!(created.iter().filter(|t| t["external_id"] == "DUP-1").count(), 1);

    let listed = app.get("/api/tickets?limit=100", &agent, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 36);
    let events = app.get("/api/events?limit=500", &app.admin, 200).await;
    let ticket_events: Vec<_> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "ticket").collect();
    assert_eq!(ticket_events.len(), 36, "one event per ticket, none for the refused ones");
    for t in &created {
        let mine: Vec<_> = ticket_events.iter().filter(|e| e["entity_id"] == t["id"]).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!((mine[0]["action"].as_str(), &mine[0]["data"]), (Some("created"), t));
    }
}
