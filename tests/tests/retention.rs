//! Retention and backup: what `ticketwire prune` removes (and what it never does), its dry run,
//! and a backup taken while writes go on.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set, Statement,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use ticketwire::{
    cli,
    config::Config,
    entity::{dispatch_cursor, event, notification, webhook_attempt, webhook_delivery},
    retention::{self, Mode, Report},
};

async fn connect(config: &Config) -> DatabaseConnection {
    ticketwire::db::connect(config).await.unwrap()
}

/// Retention in days, the catch-up window in seconds, and no background pass (the tests prune).
fn ages(config: &mut Config, days: u64, window_secs: u64) {
    config.retention.events_days = days;
    config.retention.read_notifications_days = days;
    config.retention.webhook_deliveries_days = days;
    config.retention.interval_secs = 0;
    // Several batches even for a small test's rows.
    config.retention.batch = 3;
    config.retention.pause_ms = 0;
    config.catch_up.max_age_secs = window_secs;
}

/// Makes everything about events up to `upto` look as if it happened at `at`: the events, their
/// notifications (whose UUIDv7 ids carry their creation time too) and their webhook deliveries.
async fn age(db: &DatabaseConnection, upto: i64, at: DateTime<Utc>) {
    event::Entity::update_many()
        .col_expr(event::Column::CreatedAt, Expr::value(at))
        .filter(event::Column::Id.lte(upto))
        .exec(db)
        .await
        .unwrap();
    let notes: Vec<String> = notification::Entity::find()
        .select_only()
        .column(notification::Column::Id)
        .filter(notification::Column::EventId.lte(upto))
        .into_tuple()
        .all(db)
        .await
        .unwrap();
    for (i, id) in notes.into_iter().enumerate() {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, at.timestamp() as u64, i as u32 * 1000);
        notification::Entity::update_many()
            .col_expr(notification::Column::Id, Expr::value(uuid::Uuid::new_v7(ts).to_string()))
            .col_expr(notification::Column::CreatedAt, Expr::value(at))
            .filter(notification::Column::Id.eq(id))
            .exec(db)
            .await
            .unwrap();
    }
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::CreatedAt, Expr::value(at))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(at))
        .filter(webhook_delivery::Column::EventId.lte(upto))
        .exec(db)
        .await
        .unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    events: u64,
    notifications: u64,
    webhook_deliveries: u64,
    webhook_attempts: u64,
}

async fn rows(db: &DatabaseConnection) -> Rows {
    Rows {
        events: event::Entity::find().count(db).await.unwrap(),
        notifications: notification::Entity::find().count(db).await.unwrap(),
        webhook_deliveries: webhook_delivery::Entity::find().count(db).await.unwrap(),
        webhook_attempts: webhook_attempt::Entity::find().count(db).await.unwrap(),
    }
}

fn minus(r: Rows, p: Report) -> Rows {
    Rows {
        events: r.events - p.events,
        notifications: r.notifications - p.notifications,
        webhook_deliveries: r.webhook_deliveries - p.webhook_deliveries,
        webhook_attempts: r.webhook_attempts - p.webhook_attempts,
    }
}

fn plus(a: Report, b: Report) -> Report {
    Report {
        events: a.events + b.events,
        notifications: a.notifications + b.notifications,
        webhook_deliveries: a.webhook_deliveries + b.webhook_deliveries,
        webhook_attempts: a.webhook_attempts + b.webhook_attempts,
    }
}

async fn newest_event(db: &DatabaseConnection) -> i64 {
    let newest: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .expr(Expr::col(event::Column::Id).max())
        .into_tuple()
        .one(db)
        .await
        .unwrap();
    newest.flatten().unwrap_or(0)
}

/// Waits until the dispatcher has handled every event and every webhook delivery is done.
async fn settled(app: &common::TestApp, db: &DatabaseConnection) -> i64 {
    app.eventually(|| async {
        let newest = newest_event(db).await;
        let position = ticketwire::domain::pagination::log_position(db).await.unwrap();
        let pending = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq("pending"))
            .count(db)
            .await
            .unwrap();
        (position == newest && pending == 0).then_some(newest)
    })
    .await
}

/// A customer with a webhook (the built-in receiver) opens tickets; an agent answers each.
async fn activity(app: &common::TestApp, customer: &common::Actor, agent: &common::Actor, tickets: usize) {
    for i in 0..tickets {
        let t = app.ticket(customer, &format!("Printer {i} on fire")).await;
        let id = t["id"].as_str().unwrap();
        app.post(&format!("/api/tickets/{id}/comments"), agent, json!({"content": "On my way"}), 201).await;
        app.patch(&format!("/api/tickets/{id}"), agent, json!({"priority": "high"}), 200).await;
    }
}

#[tokio::test]
async fn prune_removes_what_is_old_and_done_and_its_dry_run_counts_exactly_that_changing_nothing() {
    let app = common::spawn_with(|c| ages(c, 1, 3600)).await;
    let db = connect(&app.config).await;
    let cleo = app.customer("Cleo").await;
    let agent = app.agent("Ava").await;
    app.call(
        reqwest::Method::PUT,
        "/api/users/me/webhook",
        Some(&cleo.token),
        Some(json!({"webhook_url": "/api/notifications/webhooks/notifications"})),
        200,
    )
    .await;
    activity(&app, &cleo, &agent, 4).await;
    let old_upto = settled(&app, &db).await;
    // The admin read everything; Cleo read some, not all.
    app.post("/api/notifications/read-all", &app.admin, json!({}), 200).await;
    let cleos = app.get("/api/notifications?limit=200", &cleo, 200).await["items"].as_array().unwrap().clone();
    assert!(cleos.len() >= 4, "Cleo hears of the answers: {cleos:?}");
    for n in cleos.iter().step_by(2) {
        app.post(&format!("/api/notifications/{}/read", n["id"].as_str().unwrap()), &cleo, json!({}), 200).await;
    }
    age(&db, old_upto, Utc::now() - Duration::days(3)).await;
    // Recent activity, which stays whatever happens.
    activity(&app, &cleo, &agent, 2).await;
    let newest = settled(&app, &db).await;
    let before = rows(&db).await;
    let unread_before: HashSet<String> = notification::Entity::find()
        .filter(notification::Column::Read.eq(false))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();

    let dry = cli::prune(&app.config, Mode::DryRun).await.unwrap();
    assert_eq!(rows(&db).await, before, "a dry run changes nothing");
    assert!(
        dry.events > 0 && dry.notifications > 0 && dry.webhook_deliveries > 0 && dry.webhook_attempts > 0,
        "{dry:?}"
    );
    assert_eq!(retention::pruned_through(&db).await.unwrap(), 0);

    // Two at once (two nodes, or a node and `ticketwire prune`): they take turns, and what one
    // leaves the next pass finds.
    let (a, b) = tokio::join!(cli::prune(&app.config, Mode::Remove), cli::prune(&app.config, Mode::Remove));
    let together = plus(a.unwrap(), b.unwrap());
    let rest = cli::prune(&app.config, Mode::Remove).await.unwrap();
    assert_eq!(plus(together, rest), dry, "removed exactly what the dry run counted");
    assert_eq!(rows(&db).await, minus(before, dry));
    assert_eq!(cli::prune(&app.config, Mode::DryRun).await.unwrap(), Report::default(), "nothing left to remove");

    // The recent part of the log is whole; the horizon is where the old part ends.
    let recent = event::Entity::find().filter(event::Column::Id.gt(old_upto)).count(&db).await.unwrap();
    assert_eq!(recent, (newest - old_upto) as u64);
    assert_eq!(retention::pruned_through(&db).await.unwrap(), old_upto);
    // Unread notifications stay, and so does every event a notification refers to.
    let notes = notification::Entity::find().all(&db).await.unwrap();
    let unread_after: HashSet<String> = notes.iter().filter(|n| !n.read).map(|n| n.id.clone()).collect();
    assert_eq!(unread_after, unread_before);
    let events: HashSet<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .into_tuple::<i64>()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(notes.iter().all(|n| events.contains(&n.event_id)), "no notification lost its event");
    let kept_old: HashSet<i64> = events.iter().copied().filter(|id| *id <= old_upto).collect();
    let referred: HashSet<i64> = notes.iter().map(|n| n.event_id).filter(|id| *id <= old_upto).collect();
    assert_eq!(kept_old, referred, "old events stay exactly while a notification refers to them");
    // Attempts never outlive their delivery.
    let deliveries: HashSet<String> =
        webhook_delivery::Entity::find().all(&db).await.unwrap().into_iter().map(|d| d.id).collect();
    let attempts = webhook_attempt::Entity::find().all(&db).await.unwrap();
    assert!(attempts.iter().all(|a| deliveries.contains(&a.delivery_id)));
    // What stays still reads as before: Cleo's unread notifications, through their events.
    let unread =
        app.get("/api/notifications?unread=true&limit=200", &cleo, 200).await["items"].as_array().unwrap().len();
    let cleos_unread = notes.iter().filter(|n| n.user_id == cleo.id && !n.read).count();
    assert_eq!(unread, cleos_unread);
}

#[tokio::test]
async fn nothing_a_client_inside_the_catch_up_window_may_replay_is_pruned_whatever_the_ages() {
    // Keep events one day, but let clients catch up over two.
    let app = common::spawn_with(|c| ages(c, 1, 2 * 86_400)).await;
    let db = connect(&app.config).await;
    let cleo = app.customer("Cleo").await;
    let agent = app.agent("Ava").await;
    activity(&app, &cleo, &agent, 2).await;
    let ancient = settled(&app, &db).await;
    activity(&app, &cleo, &agent, 2).await;
    // A client that last saw `position` is inside the window: everything after it is younger.
    let settled_at = settled(&app, &db).await;
    let position = app.get("/api/tickets", &agent, 200).await["position"].as_i64().unwrap();
    assert_eq!(position, settled_at);
    activity(&app, &cleo, &agent, 2).await;
    let newest = settled(&app, &db).await;
    app.post("/api/notifications/read-all", &app.admin, json!({}), 200).await;
    app.post("/api/notifications/read-all", &cleo, json!({}), 200).await;
    app.post("/api/notifications/read-all", &agent, json!({}), 200).await;
    // Past the retention age, inside the window (and its margin): replayable still.
    age(&db, newest, Utc::now() - Duration::hours(36)).await;
    age(&db, ancient, Utc::now() - Duration::days(5)).await;
    let owed_events = event::Entity::find().filter(event::Column::Id.gt(position)).count(&db).await.unwrap();
    let owed_notes =
        notification::Entity::find().filter(notification::Column::EventId.gt(position)).count(&db).await.unwrap();

    let removed = cli::prune(&app.config, Mode::Remove).await.unwrap();
    assert!(removed.events > 0 && removed.notifications > 0, "the ancient part goes: {removed:?}");
    let left = event::Entity::find().filter(event::Column::Id.gt(ancient)).count(&db).await.unwrap();
    assert_eq!(left, (newest - ancient) as u64, "nothing inside the window was removed");
    assert_eq!(event::Entity::find().filter(event::Column::Id.gt(position)).count(&db).await.unwrap(), owed_events);
    assert_eq!(
        notification::Entity::find().filter(notification::Column::EventId.gt(position)).count(&db).await.unwrap(),
        owed_notes
    );
    let horizon = retention::pruned_through(&db).await.unwrap();
    assert!(horizon <= ancient && horizon <= position, "a catch-up from {position} is still whole (horizon {horizon})");
}

#[tokio::test]
async fn events_the_dispatcher_has_not_handled_are_never_pruned() {
    // No server: the dispatcher's cursor stays where this test puts it.
    let dir = std::env::temp_dir().join(format!("tw-retention-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = common::fresh_database(&dir).await;
    let mut config = common::test_config(dir, url);
    ages(&mut config, 1, 3600);
    let db = ticketwire::db::connect_and_migrate(&config).await.unwrap();
    let old = Utc::now() - Duration::days(10);
    for i in 0..10 {
        event::ActiveModel {
            kind: Set("ticket".into()),
            action: Set("created".into()),
            entity_id: Set(format!("t{i}")),
            data: Set(json!({"id": format!("t{i}")})),
            created_at: Set(old),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let first = event::Entity::find().one(&db).await.unwrap().unwrap().id;
    // No dispatcher yet: nothing is dispatched, nothing goes.
    assert_eq!(cli::prune(&config, Mode::Remove).await.unwrap(), Report::default());
    dispatch_cursor::ActiveModel { name: Set("main".into()), last_event_id: Set(first + 3) }.insert(&db).await.unwrap();
    let dry = cli::prune(&config, Mode::DryRun).await.unwrap();
    assert_eq!(dry.events, 4);
    assert_eq!(cli::prune(&config, Mode::Remove).await.unwrap(), dry);
    let left: Vec<i64> =
        event::Entity::find().select_only().column(event::Column::Id).into_tuple().all(&db).await.unwrap();
    assert_eq!(left, (first + 4..first + 10).collect::<Vec<_>>());
    assert_eq!(retention::pruned_through(&db).await.unwrap(), first + 3);
}

#[tokio::test]
async fn a_backup_taken_while_writes_go_on_opens_and_holds_every_ticket_committed_before_it() {
    let app = common::spawn_app().await;
    let dir = std::env::temp_dir().join(format!("tw-backup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("copy.db");
    let db = connect(&app.config).await;
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        let advice = cli::backup(&app.config, &file).await.unwrap_err().to_string();
        assert!(advice.contains("pg_dump"), "{advice}");
        assert!(!file.exists());
        return;
    }
    let cleo = app.customer("Cleo").await;
    let committed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = flag();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, base, token) = (app.client.clone(), app.base.clone(), cleo.token.clone());
            let (committed, stop) = (committed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let r = client
                        .post(format!("{base}/api/tickets"))
                        .bearer_auth(&token)
                        .json(&json!({"subject": format!("writer {w} ticket {i}"), "description": "x".repeat(500)}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let t: serde_json::Value = r.json().await.unwrap();
                    committed.lock().unwrap().push(t["id"].as_str().unwrap().to_string());
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let before: HashSet<String> = committed.lock().unwrap().iter().cloned().collect();
    let report = cli::backup(&app.config, &file).await.unwrap();
    let after: HashSet<String> = committed.lock().unwrap().iter().cloned().collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(before.len() > 10, "writes were going on: {}", before.len());
    assert_eq!(report.bytes, std::fs::metadata(&file).unwrap().len());
    assert!(cli::backup(&app.config, &file).await.is_err(), "an existing file is never overwritten");

    let copy = Database::connect(format!("sqlite://{}?mode=ro", file.display())).await.unwrap();
    let check = copy
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA integrity_check"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check.try_get_by_index::<String>(0).unwrap(), "ok");
    let in_copy: HashSet<String> =
        ticketwire::entity::ticket::Entity::find().all(&copy).await.unwrap().into_iter().map(|t| t.id).collect();
    assert!(before.is_subset(&in_copy), "every ticket committed before the backup is in it");
    assert!(in_copy.iter().all(|id| after.contains(id)), "and nothing that was never committed");
    // One snapshot: each ticket in the copy comes with its event.
    let created: HashSet<String> = event::Entity::find()
        .filter(event::Column::Kind.eq("ticket"))
        .filter(event::Column::Action.eq("created"))
        .all(&copy)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entity_id)
        .collect();
    assert!(in_copy.is_subset(&created));
    // Restoring is copying it back while the server is stopped; it then serves the copy.
    let config = app.stop().await;
    let live = config.data_dir.join("test.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", live.display()));
    }
    std::fs::copy(&file, &live).unwrap();
    let restored = common::spawn_config(config).await;
    let page = restored.get("/api/tickets?limit=200", &restored.admin, 200).await;
    assert!(page["items"].as_array().unwrap().len() >= std::cmp::min(before.len(), 200));
}

/// A stop flag for the writer tasks.
fn flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// Prints the space each table takes in the database `TW_MEASURE_DATABASE_URL` (SQLite: pages
/// per table and index from `dbstat`; PostgreSQL: `pg_total_relation_size`), with row counts:
/// how the disk use per ticket in README.md was measured.
/// `TW_MEASURE_DATABASE_URL=sqlite://path cargo test -p ticketwire-tests --test retention -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn disk_use_per_table() {
    let Ok(url) = std::env::var("TW_MEASURE_DATABASE_URL") else { return };
    let db = Database::connect(&url).await.unwrap();
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT COALESCE(i.tbl_name, d.name) AS t, SUM(d.pgsize) AS bytes FROM dbstat d \
             LEFT JOIN sqlite_schema i ON i.name = d.name GROUP BY t ORDER BY bytes DESC"
        }
        _ => {
            "SELECT relname::text AS t, pg_total_relation_size(relid)::bigint AS bytes FROM pg_stat_user_tables ORDER BY bytes DESC"
        }
    };
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    let mut total = 0;
    for row in rows {
        let (table, bytes): (String, i64) = (row.try_get("", "t").unwrap(), row.try_get("", "bytes").unwrap());
        let count = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM \"{table}\""),
            ))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<i64>("", "n").ok())
            .unwrap_or(-1);
        total += bytes;
        println!("{table:<28} {count:>9} rows {bytes:>12} bytes");
    }
    println!("{:<28} {:>9}      {total:>12} bytes", "total", "");
}
