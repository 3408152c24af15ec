//! Property tests for what a Socket.IO client controls: the connect `auth` object and the
//! `join` payload. Whatever JSON arrives, parsing answers or refuses without panicking, and no
//! room name, however crafted, lets a customer into more than its own rooms, or staff into the
//! server's internal ones.
use proptest::prelude::*;
use sea_orm::{ActiveModelTrait, ConnectOptions, Database, DatabaseConnection, Set};
use serde_json::{Map, Value, json};

use super::{
    BEHIND, Conn,
    connect::{ConnectAuth, RoomRequest},
    rooms,
};
use crate::{auth::Role, entity::ticket};

const OWN_TICKET: &str = "0190a0b1-0000-7000-8000-000000000001";
const OTHERS_TICKET: &str = "0190a0b1-0000-7000-8000-000000000002";

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        room_name().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop::sample::select(vec![
            "token",
            "rooms",
            "last_event_id",
            "last_event",
            "room",
            "_placeholder",
            "num",
            "data",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// Room names near the real ones: known prefixes with arbitrary, often hostile, suffixes.
fn room_name() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "",
        "tickets",
        "comments",
        "attachments",
        "users",
        "kb",
        "kb:public",
        "role:staff",
        "role:customer",
        BEHIND,
        "user:",
        "ticket:",
        "ticket:{",
        "ticket:urn:uuid:",
        "user:u-customer",
        "ticket:0190A0B1-0000-7000-8000-00000000000",
    ]);
    let suffix = prop_oneof![
        Just(String::new()),
        ".{0,12}",
        prop::sample::select(vec![OWN_TICKET, OTHERS_TICKET, "1", "2", "}", " ", "\0", "%00", "/../tickets"])
            .prop_map(str::to_string),
    ];
    (prefix, suffix).prop_map(|(p, s)| format!("{p}{s}"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

/// An in-memory database with one ticket of the customer's and one of somebody else's.
fn database() -> &'static DatabaseConnection {
    static DB: std::sync::OnceLock<DatabaseConnection> = std::sync::OnceLock::new();
    DB.get_or_init(|| {
        runtime().block_on(async {
            use migration::MigratorTrait;
            // One connection: every connection to `:memory:` would be a database of its own.
            let db = Database::connect(
                ConnectOptions::new("sqlite::memory:").max_connections(1).min_connections(1).to_owned(),
            )
            .await
            .unwrap();
            migration::Migrator::up(&db, None).await.unwrap();
            for (number, (id, requester)) in
                [(OWN_TICKET, "u-customer"), (OTHERS_TICKET, "u-other")].into_iter().enumerate()
            {
                let now = chrono::Utc::now();
                ticket::ActiveModel {
                    id: Set(id.into()),
                    number: Set(1001 + number as i64),
                    subject: Set("s".into()),
                    description: Set(String::new()),
                    status: Set("open".into()),
                    priority: Set("medium".into()),
                    category: Set("general".into()),
                    tags: Set(json!([])),
                    source: Set("web".into()),
                    external_id: Set(None),
                    requester_id: Set(Some(requester.into())),
                    requester_email: Set(None),
                    assignee_id: Set(None),
                    metadata: Set(json!({})),
                    classification: Set(None),
                    resolved_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    version: Set(1),
                }
                .insert(&db)
                .await
                .unwrap();
            }
            db
        })
    })
}

fn resolve(role: Role, room: &str) -> Result<Vec<String>, rooms::JoinError> {
    let conn = Conn::new("u-customer".into(), role);
    runtime().block_on(rooms::resolve(database(), &conn, room))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_connect_auth_or_join_payload_parses_or_is_refused(v in arbitrary_json()) {
        let _ = serde_json::from_value::<ConnectAuth>(v.clone());
        if let Ok(req) = serde_json::from_value::<RoomRequest>(v) {
            let _ = resolve(Role::Customer, &req.room);
        }
    }

    #[test]
    fn a_customer_joins_only_its_own_rooms(room in room_name()) {
        let allowed = ["user:u-customer".to_string(), "kb:public".to_string(), format!("ticket:{OWN_TICKET}")];
        if let Ok(joined) = resolve(Role::Customer, &room) {
            for r in &joined {
                prop_assert!(allowed.contains(r), "customer asked {room:?} and joined {r:?}");
            }
        }
    }

    #[test]
    fn staff_never_join_internal_rooms(room in room_name(), admin in any::<bool>()) {
        let role = if admin { Role::Admin } else { Role::Agent };
        if let Ok(joined) = resolve(role, &room) {
            for r in &joined {
                prop_assert!(r != BEHIND && !r.starts_with("role:") && r != "kb:public", "{role:?} asked {room:?} and joined {r:?}");
                prop_assert!(admin || r != "users", "an agent joined the users room");
                if let Some(id) = r.strip_prefix("ticket:") {
                    prop_assert!(id == OWN_TICKET || id == OTHERS_TICKET, "joined a room for a ticket that does not exist: {r:?}");
                }
                if let Some(id) = r.strip_prefix("user:") {
                    prop_assert_eq!(id, "u-customer");
                }
            }
        }
    }
}
