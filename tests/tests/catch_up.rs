//! The log position in list answers: read before the rows, so a snapshot and what the log holds
//! after its position together miss nothing, while writes go on. (The Socket.IO side of the
//! contract, the catch-up window, is in tests/js/catch_up.test.mjs.)
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::collections::HashSet;

use serde_json::{Value, json};

/// The newest event id once the dispatcher has handled it, as a list answer states it.
async fn settled(app: &common::TestApp) -> i64 {
    let mut last = -1;
    loop {
        let position = app.get("/api/tickets?limit=1", &app.admin, 200).await["position"].as_i64().unwrap();
        if position == last {
            return position;
        }
        last = position;
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

async fn events_after(app: &common::TestApp, mut after: i64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = app.get(&format!("/api/events?after={after}&limit=500"), &app.admin, 200).await;
        let page = page.as_array().unwrap().clone();
        let Some(last) = page.last() else { return out };
        after = last["event_id"].as_i64().unwrap();
        out.extend(page);
    }
}

#[tokio::test]
async fn every_list_answer_carries_the_log_position() {
    let app = common::spawn_app().await;
    let cleo = app.customer("Cleo").await;
    let t = app.ticket(&cleo, "Printer on fire").await;
    let tid = t["id"].as_str().unwrap();
    app.post(&format!("/api/tickets/{tid}/comments"), &app.admin, json!({"content": "On it"}), 201).await;
    app.post(
        "/api/kb/articles",
        &app.admin,
        json!({"title": "Printers", "body": "Turn it off", "status": "published"}),
        201,
    )
    .await;
    let newest = settled(&app).await;
    let newest_logged = events_after(&app, 0).await.last().unwrap()["event_id"].as_i64().unwrap();
    assert_eq!(newest, newest_logged);
    for (path, who) in [
        ("/api/tickets".to_string(), &app.admin),
        ("/api/tickets".to_string(), &cleo),
        (format!("/api/tickets/{tid}/comments"), &cleo),
        ("/api/notifications".to_string(), &cleo),
        ("/api/kb/articles".to_string(), &cleo),
        ("/api/users".to_string(), &app.admin),
        ("/api/users/me/webhook/deliveries".to_string(), &cleo),
    ] {
        let page = app.get(&path, who, 200).await;
        assert_eq!(page["position"].as_i64(), Some(newest), "{path}: {page}");
    }
    // Anonymous readers of the KB too.
    let (_, kb) = app.try_call(reqwest::Method::GET, "/api/kb/articles", None, None).await;
    assert_eq!(kb["position"].as_i64(), Some(newest));
    // The event log, whose body is a list of events, says it in a header.
    let r = app.client.get(app.url("/api/events?limit=1")).bearer_auth(&cleo.token).send().await.unwrap();
    assert_eq!(r.headers()["log-position"].to_str().unwrap().parse::<i64>().unwrap(), newest);
    // And the schema says so.
    let doc = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json::<Value>().await.unwrap();
    let pages: Vec<(&String, &Value)> =
        doc["components"]["schemas"].as_object().unwrap().iter().filter(|(k, _)| k.starts_with("Page")).collect();
    assert!(pages.len() >= 6);
    for (name, schema) in pages {
        assert!(schema["required"].as_array().unwrap().contains(&json!("position")), "{name}");
    }
    let events = &doc["paths"]["/api/events"]["get"]["responses"]["200"]["headers"]["log-position"];
    assert!(events.is_object(), "{events}");
}

#[tokio::test]
async fn a_snapshot_and_the_log_after_its_position_miss_nothing_while_writes_go_on() {
    let app = common::spawn_app().await;
    let mut writers = Vec::new();
    for i in 0..3 {
        writers.push(app.customer(&format!("Writer {i}")).await);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, who)| {
            let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                // Paced, so the writes span the snapshots (unpaced, all of them can land before
                // the first one), and capped, so every ticket fits one page of 200.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 60 {
                    n += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    let r = client
                        .post(format!("{base}/api/tickets"))
                        .bearer_auth(&who.token)
                        .json(&json!({"subject": format!("writer {w} ticket {n}")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    // Snapshots taken while the writers write.
    let mut snapshots = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let page = app.get("/api/tickets?limit=200", &app.admin, 200).await;
        let ids: HashSet<String> =
            page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
        snapshots.push((page["position"].as_i64().unwrap(), ids));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    settled(&app).await;
    let all: HashSet<String> = app.get("/api/tickets?limit=200", &app.admin, 200).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(all.len() > 20, "writes went on: {}", all.len());
    let positions: Vec<i64> = snapshots.iter().map(|(p, _)| *p).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    assert!(positions.first() < positions.last(), "the snapshots were taken at different points: {positions:?}");
    for (position, mut seen) in snapshots {
        for ev in events_after(&app, position).await {
            if ev["kind"] == "ticket" {
                seen.insert(ev["entity_id"].as_str().unwrap().to_string());
            }
        }
        let missed: Vec<&String> = all.difference(&seen).collect();
        assert!(missed.is_empty(), "from position {position}, missed {missed:?}");
    }
}
