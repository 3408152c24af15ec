//! Every list the API offers reads along an index, never the whole table: the statements the
//! routes send, built by the same functions the routes use, explained by the database. SQLite:
//! `EXPLAIN QUERY PLAN` must name the expected index and neither scan a table nor sort the
//! rows of a keyset page. PostgreSQL: with sequential scans and sorts priced out
//! (`enable_seqscan`, `enable_sort` off; for searches, plain index scans too), a plan that still
//! scans a table or sorts has no index to use; and the expected index must be the one used.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use reqwest::Method;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select, Statement, TransactionTrait, sea_query::Expr,
};
use serde_json::{Value, json};
use ticketwire::{
    auth::Role,
    domain::{PageQuery, comments, events, kb, notifications, search, tickets},
    entity::event,
    policy::Viewer,
};

/// What a plan must show.
struct Expect {
    /// One of these indexes is used.
    index: &'static [&'static str],
    /// Rows come in index order: no sort (a ranked search sorts its matches).
    ordered: bool,
}

const PAGE: Expect = Expect { index: &[], ordered: true };

fn uses(index: &'static [&'static str]) -> Expect {
    Expect { index, ordered: true }
}

async fn plan(db: &DatabaseConnection, statement: &Statement, ordered: bool) -> String {
    let backend = db.get_database_backend();
    let explain = |prefix: &str| {
        Statement::from_sql_and_values(
            backend,
            format!("{prefix} {}", statement.sql),
            statement.values.clone().map(|v| v.0).unwrap_or_default(),
        )
    };
    match backend {
        DbBackend::Postgres => {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.unwrap();
            if ordered {
                txn.execute_unprepared("SET LOCAL enable_sort = off").await.unwrap();
                txn.execute_unprepared("SET LOCAL enable_incremental_sort = off").await.unwrap();
            } else {
                // A search sorts its matches anyway. Without plain and index-only scans, the
                // only way left to read a table but whole is a bitmap scan, which needs a
                // condition its index can answer: a walk of a whole primary key is no way out.
                // (Where an index holds every column a query needs, PostgreSQL also offers a
                // bitmap scan of that whole index, unless index-only scans are off.)
                txn.execute_unprepared("SET LOCAL enable_indexscan = off").await.unwrap();
                txn.execute_unprepared("SET LOCAL enable_indexonlyscan = off").await.unwrap();
            }
            let rows = txn.query_all_raw(explain("EXPLAIN")).await.unwrap();
            txn.rollback().await.unwrap();
            rows.iter().map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap()).collect::<Vec<_>>().join("\n")
        }
        _ => {
            let rows = db.query_all_raw(explain("EXPLAIN QUERY PLAN")).await.unwrap();
            rows.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect::<Vec<_>>().join("\n")
        }
    }
}

async fn check(db: &DatabaseConnection, name: &str, statement: Statement, expect: Expect) -> String {
    let plan = plan(db, &statement, expect.ordered).await;
    let context = format!("{name}: {}\n--- plan ---\n{plan}", statement.sql);
    match db.get_database_backend() {
        DbBackend::Postgres => {
            assert!(!plan.contains("Seq Scan"), "a table scan: {context}");
            if expect.ordered {
                assert!(!plan.contains("Sort"), "rows sorted instead of read in order: {context}");
            }
        }
        _ => {
            for line in plan.lines() {
                // `matches`: a search's ranked subquery, at most RANKED rows.
                let whole_table = line.starts_with("SCAN ")
                    && !line.contains("VIRTUAL TABLE")
                    && !line.contains(" INDEX ")
                    && line != "SCAN matches";
                assert!(!whole_table, "a table scan: {context}");
            }
            if expect.ordered {
                assert!(!plan.contains("TEMP B-TREE"), "rows sorted instead of read in order: {context}");
            }
        }
    }
    if !expect.index.is_empty() {
        assert!(expect.index.iter().any(|i| plan.contains(i)), "none of {:?} used: {context}", expect.index);
    }
    plan
}

fn build<E: sea_orm::EntityTrait>(db: &DatabaseConnection, select: Select<E>) -> Statement {
    select.build(db.get_database_backend())
}

fn ticket_query(q: Value) -> tickets::TicketQuery {
    serde_json::from_value(q).unwrap()
}

#[tokio::test]
async fn every_list_reads_along_an_index() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    let t = app.post("/api/tickets", &c, json!({ "subject": "Printer on fire", "description": "smoke" }), 201).await;
    let tid = t["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/tickets/{tid}/comments"), &agent, json!({ "content": "on it" }), 201).await;
    app.post("/api/kb/articles", &agent, json!({ "title": "Printers", "status": "published" }), 201).await;
    // Inboxes as they look after a while, with statistics to say so (PostgreSQL chooses by
    // them, and on a handful of rows any index is as good as another): the admin's holds a
    // small part of all notifications, a customer's the rest, and nearly all are read (were
    // most unread, reading them all by the user alone would cost as much as by user and
    // unread, and the plan would be a tie). The other tables have no statistics: each filter
    // is then taken as selective.
    let opens = (0..20).map(|i| {
        app.call(Method::POST, "/api/tickets", Some(&agent.token), Some(json!({ "subject": format!("Old {i}") })), 201)
    });
    futures::future::join_all(opens).await;
    let path = format!("/api/tickets/{tid}/comments");
    for chunk in (0..300).collect::<Vec<_>>().chunks(20) {
        let replies = chunk.iter().map(|i| {
            app.call(Method::POST, &path, Some(&agent.token), Some(json!({ "content": format!("reply {i}") })), 201)
        });
        futures::future::join_all(replies).await;
    }
    let unread = |who: common::Actor, at_least: u64| {
        let app = &app;
        async move {
            app.eventually(|| async {
                let n = app.get("/api/notifications/unread-count", &who, 200).await["count"].as_u64().unwrap();
                (n >= at_least).then_some(())
            })
            .await
        }
    };
    unread(app.admin.clone(), 21).await;
    unread(c.clone(), 300).await;
    app.post("/api/notifications/read-all", &app.admin, json!({}), 200).await;
    app.post("/api/notifications/read-all", &c, json!({}), 200).await;
    app.post("/api/tickets", &agent, json!({ "subject": "New one" }), 201).await;
    unread(app.admin.clone(), 1).await;
    let db = ticketwire::db::connect(&app.config).await.unwrap();
    db.execute_unprepared("ANALYZE notifications").await.unwrap();
    let staff = Viewer::new(&agent.id, Role::Agent);
    let customer = Viewer::new(&c.id, Role::Customer);

    // Tickets, without a search: every filter alone, a customer's own, and a later page.
    let cases: Vec<(&str, Viewer, Value, Expect)> = vec![
        ("all tickets", staff, json!({}), PAGE),
        ("by status", staff, json!({ "status": "open" }), uses(&["idx_tickets_status_id"])),
        ("by priority", staff, json!({ "priority": "urgent" }), uses(&["idx_tickets_priority_id"])),
        ("by assignee", staff, json!({ "assignee_id": agent.id }), uses(&["idx_tickets_assignee_id_id"])),
        ("unassigned", staff, json!({ "assignee_id": "none" }), uses(&["idx_tickets_assignee_id_id"])),
        ("by requester", staff, json!({ "requester_id": c.id }), uses(&["idx_tickets_requester_id_id"])),
        ("by source", staff, json!({ "source": "web" }), uses(&["idx_tickets_source_id"])),
        ("a customer's own", customer, json!({}), uses(&["idx_tickets_requester_id_id"])),
        (
            "a customer's own, by status",
            customer,
            json!({ "status": "open" }),
            uses(&["idx_tickets_requester_id_id", "idx_tickets_status_id"]),
        ),
        ("a later page", staff, json!({ "status": "open", "cursor": tid }), uses(&["idx_tickets_status_id"])),
        ("a later page of all", staff, json!({ "cursor": tid }), PAGE),
    ];
    for (name, viewer, q, expect) in cases {
        let select = tickets::list_query(&viewer, &ticket_query(q)).unwrap();
        check(&db, name, build(&db, select), expect).await;
    }

    // Ticket searches: through the full-text index, whatever else is asked.
    let backend = db.get_database_backend();
    let fts = Expect {
        index: if backend == DbBackend::Postgres { &["idx_ticket_search_doc"] } else { &["VIRTUAL TABLE"] },
        ordered: false,
    };
    let searches: Vec<(&str, Viewer, Value, &str, Option<&str>)> = vec![
        ("search", staff, json!({}), "printer -toner \"on fire\" smo*", None),
        ("search by status", staff, json!({ "status": "open" }), "printer", None),
        ("search by assignee", staff, json!({ "assignee_id": agent.id }), "printer", None),
        ("search, a later page", staff, json!({}), "printer", Some(tid.as_str())),
        ("a customer's search", customer, json!({}), "printer", None),
        ("search by requester", staff, json!({ "requester_id": c.id }), "printer", None),
    ];
    for (name, viewer, q, text, cursor) in searches {
        let q = ticket_query(q);
        // As tickets::list decides: one requester's tickets are read first, else the matches.
        let narrow = !viewer.role.is_staff() || q.requester_id.is_some();
        let filtered = tickets::filtered(&viewer, &q);
        let parsed = search::SearchQuery::parse(text).unwrap().unwrap();
        let staff = viewer.role.is_staff();
        let statement = search::ticket_statement(backend, staff, narrow, filtered, &parsed, cursor, 51);
        let index: &'static [&'static str] = match (backend, narrow) {
            // PostgreSQL chooses by its statistics where to start from when there are filters
            // too (here, on a few rows, from any of them): never a table scan is what holds.
            (DbBackend::Postgres, _) if name == "search" => fts.index,
            (DbBackend::Postgres, _) => &[],
            // The requester's tickets first, each one's document looked up in the index.
            (_, true) => &["idx_tickets_requester_id_id"],
            (_, false) => &["SCAN ticket_fts VIRTUAL TABLE"],
        };
        let plan = check(&db, name, statement, Expect { index, ordered: false }).await;
        if backend == DbBackend::Sqlite {
            // Inside the ranked subquery: the full-text index walked first, or, for narrow
            // filters, their tickets first and the index looked up by rowid (FTS5's `=`).
            let first = plan.lines().find(|l| l.starts_with("SCAN ") || l.starts_with("SEARCH ")).unwrap_or("");
            if narrow {
                assert!(first.contains("idx_tickets_requester_id_id"), "{name}: the requester's tickets first\n{plan}");
                assert!(
                    plan.lines().any(|l| l.contains("ticket_fts VIRTUAL TABLE INDEX") && l.contains(":=")),
                    "{name}: each document looked up by rowid\n{plan}"
                );
            } else {
                assert!(
                    first.starts_with("SCAN ticket_fts VIRTUAL TABLE"),
                    "{name}: the full-text index first\n{plan}"
                );
            }
        }
    }

    // Notifications: an admin's (one per ticket of the helpdesk), unread ones, a later page,
    // and the unread count.
    let admin = app.admin.id.clone();
    let later = app.get("/api/notifications?limit=5", &app.admin, 200).await["next_cursor"].clone();
    let nq = |v: Value| -> notifications::NotificationQuery { serde_json::from_value(v).unwrap() };
    for (name, q, index) in [
        ("notifications", json!({}), &["idx_notifications_user_id_id"][..]),
        ("unread notifications", json!({ "unread": true }), &["idx_notifications_user_id_read_id"]),
        ("notifications, a later page", json!({ "cursor": later }), &["idx_notifications_user_id_id"]),
    ] {
        let select = notifications::list_query(&admin, &nq(q)).unwrap();
        check(&db, name, build(&db, select), uses(index)).await;
    }
    let count = notifications::unread_query(&admin).select_only().column_as(Expr::cust("COUNT(*)"), "n");
    check(&db, "unread count", build(&db, count), uses(&["idx_notifications_user_id_read_id"])).await;

    // A ticket's comments, as staff and as its customer, and a later page.
    for (name, staff, cursor) in
        [("comments", true, None), ("public comments", false, None), ("comments, later", true, Some(tid.clone()))]
    {
        let page = PageQuery { limit: None, cursor };
        let select = comments::list_query(staff, &tid, &page).unwrap();
        check(&db, name, build(&db, select), uses(&["idx_comments_ticket_id_id"])).await;
    }

    // KB: published ones (what customers and visitors get), by category, and a search.
    let aq = |v: Value| -> kb::ArticleQuery { serde_json::from_value(v).unwrap() };
    let anonymous = Viewer::anonymous();
    for (name, viewer, q, expect) in [
        ("published articles", anonymous, json!({}), uses(&["idx_kb_articles_status_id"])),
        ("articles by category", staff, json!({ "category": "general" }), uses(&["idx_kb_articles_category_id"])),
        ("drafts", staff, json!({ "status": "draft" }), uses(&["idx_kb_articles_status_id"])),
        ("all articles", staff, json!({}), PAGE),
    ] {
        let select = kb::list_query(&viewer, &aq(q)).unwrap();
        check(&db, name, build(&db, select), expect).await;
    }
    let parsed = search::SearchQuery::parse("printer*").unwrap().unwrap();
    for (name, viewer) in [("article search", staff), ("a visitor's article search", anonymous)] {
        let statement = search::article_statement(backend, kb::filtered(&viewer, &aq(json!({}))), &parsed, None, 51);
        let index: &'static [&'static str] = match backend {
            DbBackend::Postgres if viewer.role.is_staff() => &["idx_kb_articles_search_doc"],
            // With only published ones asked for, PostgreSQL may start from those (see above).
            DbBackend::Postgres => &[],
            _ => &["VIRTUAL TABLE"],
        };
        let plan = check(&db, name, statement, Expect { index, ordered: false }).await;
        if backend == DbBackend::Sqlite {
            assert!(plan.starts_with("SCAN kb_fts VIRTUAL TABLE"), "{name}: the full-text index first\n{plan}");
        }
    }

    // The event log as staff read it (GET /api/events; the query events::list sends, with the
    // same audience filter): along the primary key from a position.
    let log = event::Entity::find().filter(event::Column::Id.gt(0)).order_by_asc(event::Column::Id).limit(100);
    let log = events::visible_to(log, &agent.id, Role::Agent);
    check(&db, "events", build(&db, log), PAGE).await;
}
