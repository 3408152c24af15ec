//! Inbound ingestion end to end: native payloads through each signature scheme, dedup,
//! alert lifecycle and triage, batch (JSON and CSV), every auth failure, limits, and the
//! hooks pipeline (events, notifications).
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::TestApp;
use hmac::{Hmac, Mac};
use reqwest::{Method, header::HeaderMap};
use serde_json::{Value, json};
use sha2::Sha256;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ingest").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

fn hmac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates an integration; returns (id, secret).
async fn integration(app: &TestApp, source: &str) -> (String, String) {
    let v = app
        .post("/api/integrations", &app.admin, json!({"source": source, "name": format!("{source} prod")}), 201)
        .await;
    (v["id"].as_str().expect("id").into(), v["secret"].as_str().expect("secret").into())
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn send(app: &TestApp, path: &str, headers: &[(&str, String)], content_type: &str, body: Vec<u8>) -> Reply {
    let mut req = app.client.post(app.url(path)).header("content-type", content_type).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

async fn post_key(app: &TestApp, path: &str, key: &str, body: Vec<u8>) -> Reply {
    send(app, path, &[("x-api-key", key.to_string())], "application/json", body).await
}

fn native(source: &str) -> String {
    format!("/api/v1/tickets/webhook/{source}")
}

#[tokio::test]
async fn each_source_through_its_signature_scheme() {
    let app = common::spawn_app().await;

    // Jira: X-Hub-Signature-256, deduplicated on X-Atlassian-Webhook-Identifier.
    let (_, jira) = integration(&app, "jira").await;
    let body = fixture("jira_issue_created.json");
    let sig = format!("sha256={}", hex(&hmac(&jira, &[&body])));
    let headers = [("x-hub-signature-256", sig), ("x-atlassian-webhook-identifier", "jira-delivery-1".to_string())];
    let r = send(&app, &native("jira"), &headers, "application/json", body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.body;
    assert_eq!((t["source"].as_str(), t["external_id"].as_str()), (Some("jira"), Some("OPS-42")));
    assert_eq!(t["subject"], "VPN disconnects every hour");
    assert_eq!(t["description"], "The VPN client drops the tunnel\nabout once an hour.\n- Only on office wifi");
    assert_eq!((t["priority"].as_str(), t["status"].as_str()), (Some("high"), Some("open")));
    assert_eq!(t["requester_email"], "rae.reporter@example.com");
    assert_eq!(t["metadata"]["raw"]["issue"]["key"], "OPS-42");
    let again = send(&app, &native("jira"), &headers, "application/json", body).await;
    assert_eq!(
        (again.status, &again.body["id"], &again.body["version"]),
        (200, &t["id"], &t["version"]),
        "a redelivery changes nothing"
    );
    let done = fixture("jira_issue_done.json");
    let sig = format!("sha256={}", hex(&hmac(&jira, &[&done])));
    let r = send(&app, &native("jira"), &[("x-hub-signature-256", sig)], "application/json", done).await;
    assert_eq!((r.status, &r.body["id"], r.body["status"].as_str()), (200, &t["id"], Some("resolved")));

    // Zendesk: base64 HMAC of timestamp + body.
    let (_, zendesk) = integration(&app, "zendesk").await;
    let zsend = |body: Vec<u8>| {
        let ts = chrono::Utc::now().to_rfc3339();
        let sig = STANDARD.encode(hmac(&zendesk, &[ts.as_bytes(), &body]));
        let headers = vec![("x-zendesk-webhook-signature", sig), ("x-zendesk-webhook-signature-timestamp", ts)];
        let app = &app;
        async move { send(app, &native("zendesk"), &headers, "application/json", body).await }
    };
    let r = zsend(fixture("zendesk_ticket.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["external_id"].as_str(), r.body["priority"].as_str()), (Some("35436"), Some("urgent")));
    assert_eq!(r.body["requester_email"], "pat.requester@example.com");
    let solved = zsend(fixture("zendesk_event_solved.json")).await;
    assert_eq!(
        (solved.status, &solved.body["id"], solved.body["status"].as_str()),
        (200, &r.body["id"], Some("resolved"))
    );

    // PagerDuty: v1=<hex>, several during rotation (any may match).
    let (_, pd) = integration(&app, "pagerduty").await;
    let psend = |name: &str| {
        let body = fixture(name);
        let sig = format!("v1={},v1={}", "0".repeat(64), hex(&hmac(&pd, &[&body])));
        let app = &app;
        async move { send(app, &native("pagerduty"), &[("x-pagerduty-signature", sig)], "application/json", body).await }
    };
    let r = psend("pagerduty_triggered.json").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["external_id"].as_str(), r.body["priority"].as_str()), (Some("PGR0VU2"), Some("urgent")));
    let ack = psend("pagerduty_acknowledged.json").await;
    assert_eq!((ack.status, ack.body["status"].as_str()), (200, Some("in_progress")));
    let res = psend("pagerduty_resolved.json").await;
    assert_eq!((res.status, &res.body["id"], res.body["status"].as_str()), (200, &r.body["id"], Some("resolved")));
    // PagerDuty's test delivery when a subscription is made: acknowledged, nothing created; it is
    // verified like any other delivery.
    let pagerduty_tickets =
        || async { app.get("/api/tickets?source=pagerduty", &app.admin, 200).await["items"].as_array().map(Vec::len) };
    let before = pagerduty_tickets().await;
    let ping = psend("pagerduty_ping.json").await;
    assert_eq!((ping.status, ping.body["acknowledged"].as_str()), (202, Some("pagey.ping")), "{}", ping.body);
    let forged = send(
        &app,
        &native("pagerduty"),
        &[("x-pagerduty-signature", format!("v1={}", "0".repeat(64)))],
        "application/json",
        fixture("pagerduty_ping.json"),
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!((before, pagerduty_tickets().await), (Some(1), Some(1)), "a ping creates no ticket");

    // Senders that cannot sign: X-Api-Key or Authorization: Bearer.
    let (_, fd) = integration(&app, "freshdesk").await;
    let r = post_key(&app, &native("freshdesk"), &fd, fixture("freshdesk_ticket.txt")).await;
    assert_eq!(r.status, 201, "unquoted triggered_event is repaired: {}", r.body);
    assert_eq!((r.body["external_id"].as_str(), r.body["priority"].as_str()), (Some("1042"), Some("high")));
    assert_eq!(r.body["metadata"]["triggered_event"], "{ticket_action:created}");

    let (_, sn) = integration(&app, "servicenow").await;
    let r = send(
        &app,
        &native("servicenow"),
        &[("authorization", format!("Bearer {sn}"))],
        "application/json",
        fixture("servicenow_incident.json"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["external_id"].as_str(), r.body["priority"].as_str(), r.body["status"].as_str()),
        (Some("INC0010023"), Some("urgent"), Some("in_progress"))
    );
    assert_eq!(r.body["metadata"]["cmdb_ci"], "281190e3c0a8000b003f593aa3f20ca6");
    let r = post_key(&app, &native("servicenow"), &sn, fixture("servicenow_plain.json")).await;
    assert_eq!(
        (r.status, r.body["priority"].as_str(), &r.body["metadata"]["environment"]),
        (201, Some("high"), &json!("production"))
    );

    let (_, dd) = integration(&app, "datadog").await;
    let r = post_key(&app, &native("datadog"), &dd, fixture("datadog_triggered.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["external_id"].as_str(), r.body["priority"].as_str()),
        (Some("6897439818743104213"), Some("urgent"))
    );
    let rec = post_key(&app, &native("datadog"), &dd, fixture("datadog_recovered.json")).await;
    assert_eq!((rec.status, &rec.body["id"], rec.body["status"].as_str()), (200, &r.body["id"], Some("resolved")));
    assert_eq!(rec.body["classification"], "false_positive", "recovered within the flap window");

    // custom: any integration's key; `platform` names the source.
    let r = post_key(&app, &native("custom"), &dd, fixture("custom.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["source"].as_str(), r.body["external_id"].as_str(), r.body["category"].as_str()),
        (Some("shopify"), Some("SHOP-991"), Some("bug"))
    );
    assert_eq!(
        (&r.body["metadata"]["store"], &r.body["metadata"]["browser"]),
        (&json!("acme-eu"), &json!("Safari 17"))
    );
}

#[tokio::test]
async fn jira_cloud_admin_webhook_signature() {
    let app = common::spawn_app().await;
    let (_, jira) = integration(&app, "jira").await;
    let body = fixture("jira_issue_created.json");
    let jira_send = |value: String, body: Vec<u8>| {
        let app = &app;
        async move { send(app, &native("jira"), &[("x-hub-signature", value)], "application/json", body).await }
    };

    let r = jira_send(format!("sha256={}", hex(&hmac(&jira, &[&body]))), body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["source"].as_str(), r.body["external_id"].as_str()), (Some("jira"), Some("OPS-42")));
    let done = fixture("jira_issue_done.json");
    let r = jira_send(format!("sha256={}", hex(&hmac(&jira, &[&done]))), done.clone()).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("resolved")), "{}", r.body);

    for (why, value) in [
        ("another key", format!("sha256={}", hex(&hmac("wrong", &[&done])))),
        ("another body", format!("sha256={}", hex(&hmac(&jira, &[b"{}"])))),
        ("the digest under another method's name", format!("sha1={}", hex(&hmac(&jira, &[&done])))),
        ("no method", hex(&hmac(&jira, &[&done]))),
        ("not hex", "sha256=zz".to_string()),
    ] {
        let r = jira_send(value, done.clone()).await;
        assert_eq!((r.status, r.body["code"].as_str()), (401, Some("unauthorized")), "{why}: {}", r.body);
    }
    // The signature of one source's integration does not open another source's route.
    let sig = format!("sha256={}", hex(&hmac(&jira, &[&done])));
    let r = send(&app, &native("zendesk"), &[("x-hub-signature", sig)], "application/json", done).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test]
async fn freshdesk_simple_mode_requester() {
    let app = common::spawn_app().await;
    let (_, fd) = integration(&app, "freshdesk").await;

    // Simple mode, requester unknown here: the address is kept on the ticket, the name in metadata.
    let r = post_key(&app, &native("freshdesk"), &fd, fixture("freshdesk_simple.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = &r.body;
    assert_eq!((t["external_id"].as_str(), t["subject"].as_str()), (Some("2077"), Some("Cannot reset my password")));
    assert_eq!((t["requester_email"].as_str(), t["requester_id"].as_str()), (Some("noor.haddad@example.com"), None));
    assert_eq!(t["metadata"]["requester_name"], "Noor Haddad");
    assert_eq!((t["priority"].as_str(), t["status"].as_str()), (Some("urgent"), Some("pending")));

    // A requester with an account becomes the ticket's requester, wrapped or not, also when the
    // placeholder expanded to a mailbox.
    let kim = app.customer("Kim").await;
    let wrapped = json!({"freshdesk_webhook": {"ticket_id": 2078, "ticket_subject": "Invoice",
        "ticket_requester_email": format!("Kim <{}>", kim.email.to_uppercase()), "ticket_priority": 1, "ticket_status": 2}});
    let r = post_key(&app, &native("freshdesk"), &fd, wrapped.to_string().into_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["requester_id"].as_str(), Some(kim.id.as_str()), "{}", r.body);
    assert_eq!((r.body["priority"].as_str(), r.body["status"].as_str()), (Some("low"), Some("open")));
    assert_eq!(r.body["metadata"]["requester_name"], "Kim");
    let plain = json!({"ticket_id": 2079, "ticket_subject": "Invoice again", "requester_email": kim.email,
        "ticket_priority": "High"});
    let r = post_key(&app, &native("freshdesk"), &fd, plain.to_string().into_bytes()).await;
    assert_eq!((r.status, r.body["requester_id"].as_str()), (201, Some(kim.id.as_str())), "{}", r.body);
    assert_eq!(r.body["priority"], "high");

    // A wrapper without a ticket id, or not an object, is refused naming the field.
    for body in [json!({"freshdesk_webhook": {"ticket_subject": "no id"}}), json!({"freshdesk_webhook": "2080"})] {
        let r = post_key(&app, &native("freshdesk"), &fd, body.to_string().into_bytes()).await;
        assert_eq!((r.status, r.body["code"].as_str()), (422, Some("validation")), "{body}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap_or("").contains("ticket_id"), "{}", r.body);
    }
    let list = app.get("/api/tickets?source=freshdesk", &app.admin, 200).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn custom_source_maps_severity() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "custom").await;
    let custom = |item: Value| {
        let (app, key) = (&app, &key);
        async move { post_key(app, &native("custom"), key, item.to_string().into_bytes()).await }
    };
    for (severity, priority) in [
        ("high", "high"),
        ("critical", "urgent"),
        ("SEV2", "high"),
        ("p1", "urgent"),
        ("warning", "medium"),
        ("info", "low"),
    ] {
        let r = custom(json!({"title": format!("disk {severity}"), "severity": severity})).await;
        assert_eq!((r.status, r.body["priority"].as_str()), (201, Some(priority)), "{severity}: {}", r.body);
        assert_eq!(r.body["metadata"]["severity"], severity, "the sender's word is kept");
    }
    let r = custom(json!({"title": "both", "severity": "critical", "priority": "low"})).await;
    assert_eq!((r.status, r.body["priority"].as_str()), (201, Some("low")), "an explicit priority wins");
    // The flexible route reads it the same way.
    let r = post_key(
        &app,
        "/api/integrations/webhook",
        &key,
        json!({"title": "flexible", "severity": "major"}).to_string().into_bytes(),
    )
    .await;
    assert_eq!((r.status, r.body["priority"].as_str()), (201, Some("high")), "{}", r.body);

    // A severity outside the vocabulary was accepted before and still is; a bad priority is not.
    let r = custom(json!({"title": "odd", "severity": "S-whatever"})).await;
    assert_eq!((r.status, r.body["priority"].as_str()), (201, Some("medium")), "{}", r.body);
    let r = custom(json!({"title": "bad", "severity": "high", "priority": "whenever"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (422, Some("validation")), "{}", r.body);
}

#[tokio::test]
async fn alertmanager_firing_repeat_resolved_and_flap() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "prometheus").await;
    let auth = [("authorization", format!("Bearer {key}"))];
    let r = send(&app, &native("prometheus"), &auth, "application/json", fixture("prometheus_firing.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ids: Vec<String> = r.headers["x-ticket-ids"].to_str().expect("ascii").split(',').map(String::from).collect();
    assert_eq!(ids.len(), 2, "one ticket per alert");
    let t = r.body;
    assert_eq!((t["id"].as_str(), t["external_id"].as_str()), (Some(ids[0].as_str()), Some("c4f8a1e2b3d40001")));
    assert_eq!(
        (t["subject"].as_str(), t["priority"].as_str(), t["classification"].as_str()),
        (Some("CPU usage above 90% on db1"), Some("urgent"), Some("uncertain"))
    );

    let again = send(&app, &native("prometheus"), &auth, "application/json", fixture("prometheus_firing.json")).await;
    assert_eq!((again.status, &again.body["id"]), (200, &t["id"]));
    assert_eq!(again.body["metadata"]["occurrences"], 2);

    let resolved =
        send(&app, &native("prometheus"), &auth, "application/json", fixture("prometheus_resolved.json")).await;
    assert_eq!(
        (resolved.status, &resolved.body["id"], resolved.body["status"].as_str()),
        (200, &t["id"], Some("resolved"))
    );
    assert_eq!(resolved.body["classification"], "uncertain", "45 minutes is no flap");
    let second = app.get(&format!("/api/tickets/{}", ids[1]), &app.admin, 200).await;
    assert_eq!(second["status"], "open");

    // Resolving two minutes after firing is a flap.
    let mut flap = fixture_json("prometheus_firing.json");
    flap["alerts"] = json!([flap["alerts"][0].clone()]);
    flap["alerts"][0]["fingerprint"] = json!("flappy");
    let fired = send(&app, &native("prometheus"), &auth, "application/json", flap.to_string().into_bytes()).await;
    assert_eq!(fired.status, 201);
    flap["status"] = json!("resolved");
    flap["alerts"][0]["status"] = json!("resolved");
    flap["alerts"][0]["endsAt"] = json!("2026-11-22T05:02:00Z");
    let r = send(&app, &native("prometheus"), &auth, "application/json", flap.to_string().into_bytes()).await;
    assert_eq!(
        (r.status, &r.body["id"], r.body["classification"].as_str()),
        (200, &fired.body["id"], Some("false_positive"))
    );

    // A person's decision is not overwritten by a later resolution.
    app.patch(&format!("/api/tickets/{}", ids[1]), &app.admin, json!({"classification": "true_positive"}), 200).await;
    let mut res2 = fixture_json("prometheus_resolved.json");
    res2["alerts"][0]["fingerprint"] = json!("c4f8a1e2b3d40002");
    res2["alerts"][0]["endsAt"] = json!("2026-11-22T05:01:00Z");
    let r = send(&app, &native("prometheus"), &auth, "application/json", res2.to_string().into_bytes()).await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["classification"].as_str()),
        (Some("resolved"), Some("true_positive"))
    );
}

#[tokio::test]
async fn concurrent_identical_deliveries_make_one_ticket() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "datadog").await;
    let body = fixture("datadog_triggered.json");
    let path = native("datadog");
    let replies = futures::future::join_all((0..10).map(|_| post_key(&app, &path, &key, body.clone()))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let answers: Vec<String> = replies.iter().map(|r| format!("{} {}", r.status, r.body)).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{answers:#?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 200), "{answers:#?}");
    let ids: std::collections::HashSet<&str> = replies.iter().filter_map(|r| r.body["id"].as_str()).collect();
    assert_eq!(ids.len(), 1);
    let list = app.get("/api/tickets?source=datadog", &app.admin, 200).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let t = &list["items"][0];
    assert_eq!(t["metadata"]["occurrences"], 10);
}

/// Several external ids at once, each delivered concurrently through both routes that take the
/// flexible shape: each id still makes one ticket, every delivery is counted, nothing fails.
#[tokio::test]
async fn concurrent_deliveries_of_several_ids_through_both_routes() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "custom").await;
    let (ids, per_id) = (4, 8);
    let deliveries = (0..ids * per_id).map(|i| {
        let path = if i % 2 == 0 { native("custom") } else { "/api/integrations/webhook".to_string() };
        let item = json!({"title": format!("burst {}", i % ids), "id": format!("B-{}", i % ids), "platform": "burst"});
        let (app, key) = (&app, &key);
        async move { post_key(app, &path, key, item.to_string().into_bytes()).await }
    });
    let replies = futures::future::join_all(deliveries).await;
    let answers: Vec<String> = replies.iter().map(|r| format!("{} {}", r.status, r.body)).collect();
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 200), "{answers:#?}");
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), ids, "{answers:#?}");
    let list = app.get("/api/tickets?source=burst&limit=100", &app.admin, 200).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), ids);
    for t in items {
        assert_eq!(t["metadata"]["occurrences"], per_id, "{t}");
    }
}

/// A delivery that PostgreSQL aborts as a deadlock victim is run again rather than answered
/// with an error. The deadlock is made on purpose: another writer holds the event-order lock
/// (what every transaction that records an event takes) while the delivery, having updated the
/// ticket, waits for it; that writer then updates the same ticket. The delivery waited first,
/// so PostgreSQL's check (after `deadlock_timeout`, 1 s) finds the cycle in it and aborts it.
#[tokio::test]
async fn a_delivery_aborted_by_a_deadlock_is_run_again() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
    let app = common::spawn_app().await;
    let url = app.config.database_url.clone().expect("database url");
    if !url.starts_with("postgres") {
        return; // SQLite's writers take turns: there is no deadlock to make.
    }
    let (_, key) = integration(&app, "datadog").await;
    let (path, body) = (native("datadog"), fixture("datadog_triggered.json"));
    let first = post_key(&app, &path, &key, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.body["id"].as_str().expect("id").to_string();
    // The creation's notifications written, nothing else will be waiting for the lock.
    let admin = app.admin.clone();
    app.eventually(|| {
        let (app, admin, id) = (&app, &admin, id.clone());
        async move {
            let list = app.get("/api/notifications", admin, 200).await;
            list["items"].as_array()?.iter().find(|n| n["related_id"] == id.as_str()).cloned()
        }
    })
    .await;

    let db = Database::connect(&url).await.expect("connect");
    let other = db.begin().await.expect("begin");
    other.execute_unprepared("SELECT pg_advisory_xact_lock(7245300201)").await.expect("event-order lock");
    let writer = async {
        // Until the delivery waits for an advisory lock, holding the ticket's row.
        loop {
            let waiting = other
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                ))
                .await
                .expect("pg_locks")
                .and_then(|row| row.try_get::<i64>("", "n").ok())
                .unwrap_or(0);
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let update = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tickets SET subject = subject WHERE id = $1",
            [id.clone().into()],
        );
        let updated = other.execute_raw(update).await.map(|r| r.rows_affected());
        other.commit().await.expect("commit");
        updated
    };
    let (reply, updated) = tokio::join!(post_key(&app, &path, &key, body), writer);
    assert_eq!(updated.expect("the other writer went through once the delivery gave way"), 1);
    assert_eq!((reply.status, reply.body["id"].as_str()), (200, Some(id.as_str())), "{}", reply.body);
    assert_eq!(reply.body["metadata"]["occurrences"], 2, "counted once: the aborted attempt left nothing");
    let t = app.get(&format!("/api/tickets/{id}"), &app.admin, 200).await;
    assert_eq!((&t["version"], &t["metadata"]["occurrences"]), (&json!(2), &json!(2)), "{t}");
}

#[tokio::test]
async fn flexible_mapping_and_batches() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "custom").await;
    let known = app.customer("Ana").await;

    let r = post_key(
        &app,
        "/api/integrations/webhook",
        &key,
        json!({"title": "Hello", "user_email": known.email, "id": "F-1"}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["source"].as_str(), r.body["requester_id"].as_str()),
        (Some("custom"), Some(known.id.as_str())),
        "an existing user becomes the requester"
    );
    let r =
        post_key(&app, "/api/integrations/webhook", &key, json!({"description": "x"}).to_string().into_bytes()).await;
    assert_eq!((r.status, &r.body), (400, &json!({"code": "validation", "detail": "Title or subject is required"})));

    let r = post_key(&app, "/api/integrations/webhook/batch", &key, fixture("batch.json")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["created_count"].as_u64(), r.body["updated_count"].as_u64(), r.body["failed_count"].as_u64()),
        (Some(2), Some(1), Some(2))
    );
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(
        results.iter().map(|x| x["status"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        vec!["created", "failed", "created", "failed", "updated"]
    );
    assert_eq!(results[1]["error"]["detail"], "Title or subject is required");
    assert_eq!(results[3]["error"]["code"], "validation");
    assert_eq!(results[4]["ticket_id"], results[0]["ticket_id"]);

    let r =
        send(&app, "/api/integrations/webhook/batch", &[("x-api-key", key.clone())], "text/csv", fixture("batch.csv"))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["created_count"].as_u64(), r.body["failed_count"].as_u64()), (Some(2), Some(1)));
    let id = r.body["results"][0]["ticket_id"].as_str().expect("id");
    let t = app.get(&format!("/api/tickets/{id}"), &app.admin, 200).await;
    assert_eq!(
        (t["subject"].as_str(), t["description"].as_str(), t["priority"].as_str()),
        (Some("Printer, 2nd floor"), Some("Paper jam, \"again\""), Some("low"))
    );

    // The web-client's import page: a staff member's own access token, source `import`.
    let agent = app.agent("Ivy").await;
    let r = send(
        &app,
        "/api/integrations/webhook/batch",
        &[("authorization", format!("Bearer {}", agent.token))],
        "text/csv",
        b"title,id\nImported,IMP-1\n".to_vec(),
    )
    .await;
    assert_eq!((r.status, r.body["created_count"].as_u64()), (200, Some(1)), "{}", r.body);
    let t = app
        .get(&format!("/api/tickets/{}", r.body["results"][0]["ticket_id"].as_str().expect("id")), &app.admin, 200)
        .await;
    assert_eq!((t["source"].as_str(), t["external_id"].as_str()), (Some("import"), Some("IMP-1")));
    let r = send(
        &app,
        "/api/integrations/webhook/batch",
        &[("authorization", format!("Bearer {}", known.token))],
        "text/csv",
        b"title\nx\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, 403, "customers cannot import");

    let too_many: Vec<Value> = (0..501).map(|i| json!({"title": format!("t{i}")})).collect();
    let r = post_key(&app, "/api/integrations/webhook/batch", &key, serde_json::to_vec(&too_many).expect("json")).await;
    assert_eq!(r.status, 413);
    let r = post_key(&app, "/api/integrations/webhook/batch", &key, b"{\"title\": 1}".to_vec()).await;
    assert_eq!(r.status, 422);

    let spec = app.call(Method::GET, "/api/openapi.json", None, None, 200).await;
    for path in [
        "/api/v1/tickets/webhook/{source}",
        "/api/integrations/webhook/batch",
        "/api/integrations/{id}",
        "/api/tickets/{id}/suggested-articles",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn health_names_the_endpoint() {
    let app = common::spawn_app().await;
    let health = app.call(Method::GET, "/api/integrations/webhook/health", None, None, 200).await;
    assert_eq!(
        (health["status"].as_str(), health["endpoint"].as_str()),
        (Some("healthy"), Some("webhook")),
        "{health}"
    );
    assert_eq!(health["path"], "/api/integrations/webhook");
    assert!(health["supported_platforms"].as_array().expect("list").contains(&json!("prometheus")));
    assert!(health["features"].as_array().expect("list").contains(&json!("signature_verification")));
    assert_eq!(
        (health["batch_max_items"].as_u64(), health["max_body_bytes"].as_u64()),
        (Some(app.config.ingest.batch_max_items as u64), Some(app.config.ingest.max_body_bytes as u64))
    );

    let spec = app.call(Method::GET, "/api/openapi.json", None, None, 200).await;
    let answer = &spec["paths"]["/api/integrations/webhook/health"]["get"]["responses"]["200"];
    assert_eq!(
        answer["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/IngestHealth",
        "{answer}"
    );
    let schema = &spec["components"]["schemas"]["IngestHealth"];
    assert_eq!(
        (&schema["properties"]["status"]["example"], &schema["properties"]["endpoint"]["example"]),
        (&json!("healthy"), &json!("webhook"))
    );
}

#[tokio::test]
async fn every_auth_failure() {
    let app = common::spawn_app().await;
    let (jira_id, jira) = integration(&app, "jira").await;
    let (_, prom) = integration(&app, "prometheus").await;
    let body = fixture("jira_issue_created.json");

    let r = send(&app, &native("jira"), &[], "application/json", body.clone()).await;
    assert_eq!(r.status, 401, "missing credentials");
    assert_eq!(post_key(&app, &native("jira"), "not-a-key", body.clone()).await.status, 401, "wrong key");
    assert_eq!(post_key(&app, &native("jira"), &prom, body.clone()).await.status, 401, "another source's key");
    let bad = format!("sha256={}", hex(&hmac("wrong", &[&body])));
    assert_eq!(
        send(&app, &native("jira"), &[("x-hub-signature-256", bad)], "application/json", body.clone()).await.status,
        401,
        "wrong signature"
    );
    let tampered = format!("sha256={}", hex(&hmac(&jira, &[b"other body"])));
    assert_eq!(
        send(&app, &native("jira"), &[("x-hub-signature-256", tampered)], "application/json", body.clone())
            .await
            .status,
        401
    );
    assert_eq!(post_key(&app, &native("gitlab"), &jira, body.clone()).await.status, 404, "unknown source");
    assert_eq!(post_key(&app, "/api/integrations/webhook", "nope", b"{}".to_vec()).await.status, 401);

    // Listing shows no secrets; only admins manage integrations.
    let list = app.get("/api/integrations", &app.admin, 200).await;
    assert_eq!(list.as_array().expect("list").len(), 2);
    assert!(!list.to_string().contains(&jira) && list[0].get("secret").is_none());
    let agent = app.agent("Alex").await;
    app.get("/api/integrations", &agent, 403).await;
    app.post("/api/integrations", &agent, json!({"source": "jira", "name": "x"}), 403).await;
    app.post("/api/integrations", &app.admin, json!({"source": "gitlab", "name": "x"}), 422).await;

    assert_eq!(post_key(&app, &native("jira"), &jira, body.clone()).await.status, 201);
    app.delete(&format!("/api/integrations/{jira_id}"), &app.admin, 204).await;
    app.delete(&format!("/api/integrations/{jira_id}"), &app.admin, 404).await;
    assert_eq!(post_key(&app, &native("jira"), &jira, body.clone()).await.status, 401, "deleted integration");
    let sig = format!("sha256={}", hex(&hmac(&jira, &[&body])));
    assert_eq!(
        send(&app, &native("jira"), &[("x-hub-signature-256", sig)], "application/json", body).await.status,
        401
    );
}

#[tokio::test]
async fn malformed_payloads_are_4xx() {
    let app = common::spawn_app().await;
    let (_, key) = integration(&app, "prometheus").await;
    let r = post_key(&app, &native("prometheus"), &key, b"{not json".to_vec()).await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("bad_request")));
    let r = post_key(&app, &native("prometheus"), &key, b"{\"status\": \"firing\"}".to_vec()).await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].as_str().unwrap_or("").contains("alerts"), "{}", r.body);
    let r = post_key(&app, &native("prometheus"), &key, b"[1, 2]".to_vec()).await;
    assert_eq!(r.status, 422);
    let r =
        post_key(&app, &native("prometheus"), &key, json!({"alerts": [{"labels": {}}]}).to_string().into_bytes()).await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn oversize_and_rate_limit() {
    let app = common::spawn_with(|c| {
        c.ingest.max_body_bytes = 2048;
        c.ingest.rate_per_second = 1;
    })
    .await;
    let (_, key) = integration(&app, "custom").await;
    let big = json!({"title": "x", "description": "y".repeat(4096)}).to_string().into_bytes();
    assert_eq!(post_key(&app, "/api/integrations/webhook", &key, big.clone()).await.status, 413);
    // Chunked, without Content-Length: the cap holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let resp = app
        .client
        .post(app.url(&native("custom")))
        .header("x-api-key", &key)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 413);

    // The 413 spent no token: a burst of two, then 429 with Retry-After.
    let small = || json!({"title": "small"}).to_string().into_bytes();
    assert_eq!(post_key(&app, "/api/integrations/webhook", &key, small()).await.status, 201);
    assert_eq!(post_key(&app, "/api/integrations/webhook", &key, small()).await.status, 201);
    let r = post_key(&app, "/api/integrations/webhook", &key, small()).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry >= 1);
}

#[tokio::test]
async fn ingested_ticket_reaches_events_notifications_and_suggestions() {
    let app = common::spawn_app().await;
    for (title, body) in [
        ("Printer troubleshooting", "Clear the paper tray and restart the printer."),
        ("VPN disconnects", "If the VPN disconnects every hour, update the VPN client and forget the office wifi."),
        ("Refunds", "How refunds are processed."),
    ] {
        app.post("/api/kb/articles", &app.admin, json!({"title": title, "body": body, "status": "published"}), 201)
            .await;
    }
    app.post(
        "/api/kb/articles",
        &app.admin,
        json!({"title": "VPN disconnects draft", "body": "VPN VPN wifi hour", "status": "draft"}),
        201,
    )
    .await;
    let rae = app.customer("Rae").await;

    let (_, key) = integration(&app, "jira").await;
    let mut issue = fixture_json("jira_issue_created.json");
    issue["issue"]["fields"]["reporter"]["emailAddress"] = json!(rae.email);
    let r = post_key(&app, &native("jira"), &key, issue.to_string().into_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["requester_id"].as_str(), Some(rae.id.as_str()));

    let events = app.get("/api/events", &app.admin, 200).await;
    assert!(
        events
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["entity_id"] == id.as_str() && e["kind"] == "ticket" && e["action"] == "created")
    );
    let admin = app.admin.clone();
    let note = app
        .eventually(|| {
            let (app, admin, id) = (&app, &admin, id.clone());
            async move {
                let list = app.get("/api/notifications", admin, 200).await;
                list["items"]
                    .as_array()?
                    .iter()
                    .find(|n| n["type"] == "new_ticket" && n["related_id"] == id.as_str())
                    .cloned()
            }
        })
        .await;
    assert!(note["message"].as_str().unwrap_or("").contains("VPN disconnects every hour"));

    let suggestions = app.get(&format!("/api/tickets/{id}/suggested-articles"), &rae, 200).await;
    let titles: Vec<&str> =
        suggestions.as_array().expect("list").iter().filter_map(|s| s["article"]["title"].as_str()).collect();
    assert_eq!(titles.first(), Some(&"VPN disconnects"), "{titles:?}");
    assert!(!titles.contains(&"VPN disconnects draft") && !titles.contains(&"Refunds"));
    let stranger = app.customer("Stan").await;
    app.get(&format!("/api/tickets/{id}/suggested-articles"), &stranger, 404).await;
}
