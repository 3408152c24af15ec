//! A helpdesk's working tools: the staff directory, a ticket's timeline, canned replies,
//! notification preferences, the first-run setup link and what the CSV import reports.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::Method;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn agents_look_people_up_and_assign_to_colleagues() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo Customer").await;
    let agnes = app.agent("Agnes Agent").await;
    let bert = app.agent("Bert Agent").await;

    // Agents find people by name or email, and see who they are, nothing about the account.
    let found = app.get("/api/users?q=bert", &agnes, 200).await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(keys(&items[0]), ["email", "id", "is_active", "name", "role"]);
    assert_eq!(items[0]["name"], "Bert Agent");
    assert_eq!(items[0]["role"], "agent");
    let staff = app.get("/api/users?role=agent&is_active=true", &agnes, 200).await;
    assert_eq!(staff["items"].as_array().unwrap().len(), 2);
    // Admins still get the whole account.
    let full = app.get("/api/users?q=bert", &app.admin, 200).await;
    assert!(full["items"][0]["created_at"].is_string());
    // Customers look nobody up.
    app.get("/api/users?q=bert", &c, 403).await;

    // Assigning to a colleague, who is told.
    let t = app.post("/api/tickets", &c, json!({"subject": "VPN down"}), 201).await;
    let id = t["id"].as_str().unwrap();
    let t = app.patch(&format!("/api/tickets/{id}"), &agnes, json!({"assignee_id": bert.id}), 200).await;
    assert_eq!(t["assignee_id"], bert.id.as_str());
    let note = app
        .eventually(|| async {
            let list = app.get("/api/notifications", &bert, 200).await;
            list["items"].as_array().unwrap().iter().find(|n| n["ticket_id"] == id).cloned()
        })
        .await;
    assert_eq!(note["message"], "Ticket 'VPN down' was updated by Agnes Agent (assigned to Bert Agent)");
}

#[tokio::test]
async fn a_tickets_timeline_says_what_changed_and_who_changed_it() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let agnes = app.agent("Agnes").await;
    let bert = app.agent("Bert").await;
    let t = app.post("/api/tickets", &c, json!({"subject": "Printer"}), 201).await;
    let id = t["id"].as_str().unwrap();
    app.patch(&format!("/api/tickets/{id}"), &agnes, json!({"status": "in_progress", "assignee_id": bert.id}), 200)
        .await;
    app.patch(&format!("/api/tickets/{id}"), &bert, json!({"priority": "urgent"}), 200).await;
    // A change the timeline does not follow leaves no entry.
    app.patch(&format!("/api/tickets/{id}"), &bert, json!({"description": "more"}), 200).await;

    let timeline = app.get(&format!("/api/tickets/{id}/timeline"), &agnes, 200).await;
    let entries = timeline.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{timeline}");
    assert_eq!(entries[0]["action"], "created");
    assert_eq!(entries[0]["actor_name"], "Cleo");
    assert_eq!(entries[1]["actor_name"], "Agnes");
    assert_eq!(
        entries[1]["changes"],
        json!([
            {"field": "status", "from": "open", "to": "in_progress", "from_name": null, "to_name": null},
            {"field": "assignee", "from": null, "to": bert.id, "from_name": null, "to_name": "Bert"},
        ])
    );
    assert_eq!(entries[2]["actor_name"], "Bert");
    assert_eq!(entries[2]["changes"][0]["field"], "priority");
    assert_eq!(entries[2]["changes"][0]["to"], "urgent");
    // Staff only; another customer's ticket is not found.
    app.get(&format!("/api/tickets/{id}/timeline"), &c, 403).await;
    let other = app.customer("Other").await;
    app.get(&format!("/api/tickets/{id}/timeline"), &other, 404).await;
}

#[tokio::test]
async fn canned_replies_are_staff_managed() {
    let app = common::spawn_app().await;
    let agnes = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    let made = app
        .post(
            "/api/canned-replies",
            &agnes,
            json!({"title": "Restart", "body": "Hi {{requester.name}}, restart it."}),
            201,
        )
        .await;
    let id = made["id"].as_str().unwrap();
    app.post("/api/canned-replies", &app.admin, json!({"title": "Apology", "body": "Sorry!"}), 201).await;
    let list = app.get("/api/canned-replies", &agnes, 200).await;
    let titles: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Apology", "Restart"]);
    // Edited with If-Match: a stale version is refused.
    let resp = app
        .client
        .patch(app.url(&format!("/api/canned-replies/{id}")))
        .bearer_auth(&agnes.token)
        .header("if-match", "7")
        .json(&json!({"title": "Restart it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let edited = app.patch(&format!("/api/canned-replies/{id}"), &agnes, json!({"title": "Restart it"}), 200).await;
    assert_eq!(edited["version"], 2);
    app.patch(&format!("/api/canned-replies/{id}"), &agnes, json!({"title": "  "}), 422).await;
    app.get("/api/canned-replies", &c, 403).await;
    app.post("/api/canned-replies", &c, json!({"title": "x", "body": "y"}), 403).await;
    app.delete(&format!("/api/canned-replies/{id}"), &agnes, 204).await;
    app.delete(&format!("/api/canned-replies/{id}"), &agnes, 404).await;
    app.delete("/api/canned-replies/not-an-id", &agnes, 404).await;
}

#[tokio::test]
async fn agents_choose_to_hear_of_new_unassigned_tickets() {
    let app = common::spawn_app().await;
    let c = app.customer("Cleo").await;
    let keen = app.agent("Keen").await;
    let quiet = app.agent("Quiet").await;
    let prefs = app.get("/api/users/me/notification-preferences", &keen, 200).await;
    assert_eq!(prefs["new_unassigned_tickets"], false);
    let prefs = app
        .call(
            Method::PUT,
            "/api/users/me/notification-preferences",
            Some(&keen.token),
            Some(json!({"new_unassigned_tickets": true})),
            200,
        )
        .await;
    assert_eq!(prefs["new_unassigned_tickets"], true);
    // Customers cannot ask for others' tickets.
    app.call(
        Method::PUT,
        "/api/users/me/notification-preferences",
        Some(&c.token),
        Some(json!({"new_unassigned_tickets": true})),
        403,
    )
    .await;

    app.post("/api/tickets", &c, json!({"subject": "Nobody has this yet"}), 201).await;
    // Assigned at once: not unassigned, nobody but the admins hears of it.
    app.post("/api/tickets", &quiet, json!({"subject": "Mine already", "assignee_id": quiet.id}), 201).await;
    let note = app
        .eventually(|| async {
            let list = app.get("/api/notifications", &keen, 200).await;
            list["items"].as_array().unwrap().first().cloned()
        })
        .await;
    assert_eq!(note["type"], "new_unassigned_ticket");
    assert_eq!(note["message"], "New unassigned ticket 'Nobody has this yet' from Cleo");
    // The admin's own notice of the second ticket proves it was dispatched.
    app.eventually(|| async {
        let list = app.get("/api/notifications", &app.admin, 200).await;
        (list["items"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    assert_eq!(app.get("/api/notifications", &keen, 200).await["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/api/notifications", &quiet, 200).await["items"], json!([]));
}

#[tokio::test]
async fn the_setup_link_opens_nothing_once_an_admin_exists() {
    let app = common::spawn_app().await;
    let status = app.call(Method::GET, "/api/setup", None, None, 200).await;
    assert_eq!(status, json!({"needed": false}));
    let token = ticketwire::auth::JwtKeys::new(app.config.jwt_secret.as_deref().unwrap().as_bytes(), 60)
        .setup_token()
        .to_string();
    let body = json!({"token": token, "email": "second@example.com", "name": "Second", "password": "password123"});
    app.call(Method::POST, "/api/setup", None, Some(body), 409).await;
    let body = json!({"token": "guess", "email": "eve@example.com", "name": "Eve", "password": "password123"});
    app.call(Method::POST, "/api/setup", None, Some(body), 403).await;
}

#[tokio::test]
async fn the_first_admin_is_made_from_the_setup_link() {
    let data_dir = std::env::temp_dir().join(format!("tw-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let config = common::test_config(data_dir.clone(), common::fresh_database(&data_dir).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ticketwire::run(config.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut status = Value::Null;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/api/setup")).send().await {
            status = r.json().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status, json!({"needed": true}));
    let token =
        ticketwire::auth::JwtKeys::new(config.jwt_secret.as_deref().unwrap().as_bytes(), 60).setup_token().to_string();
    // Two people follow the link at once: one becomes the admin.
    let attempt = |email: &'static str| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let body = json!({"token": token, "email": email, "name": "First", "password": "password123"});
            client.post(format!("{base}/api/setup")).json(&body).send().await.unwrap()
        }
    };
    let (a, b) = tokio::join!(attempt("first@example.com"), attempt("rival@example.com"));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let winner = if a.status() == 201 { a } else { b };
    let signed_in: Value = winner.json().await.unwrap();
    assert_eq!(signed_in["user"]["role"], "admin");
    let me = client
        .get(format!("{base}/api/users/me"))
        .bearer_auth(signed_in["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let status: Value = client.get(format!("{base}/api/setup")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status, json!({"needed": false}));
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test]
async fn the_import_reports_each_row_by_its_line() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let csv = "subject,description,priority,id\n\
               Printer,\"two\nlines\",high,ext-1\n\
               ,no subject,low,ext-2\n\
               \n\
               Scanner,fine,loud,ext-3\n";
    let resp = app
        .client
        .post(app.url("/api/integrations/webhook/batch"))
        .bearer_auth(&agent.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!((r["created_count"].as_u64(), r["failed_count"].as_u64()), (Some(1), Some(2)), "{r}");
    let rows: Vec<(Value, Value, Value)> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["line"].clone(), x["status"].clone(), x["external_id"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!(2), json!("created"), json!("ext-1")),
            (json!(4), json!("failed"), json!("ext-2")),
            (json!(6), json!("failed"), json!("ext-3")),
        ]
    );
    assert!(r["results"][0]["ticket_number"].as_i64().unwrap() > 1000);
    assert_eq!(r["results"][2]["error"]["code"], "validation");
}
