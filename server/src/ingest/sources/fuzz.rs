//! Property tests: whatever a sender posts, every normaliser answers or refuses, never panics;
//! and a real payload with any one field removed or replaced is handled the same way.
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{freshdesk, normalise};

const SOURCES: [&str; 8] =
    ["servicenow", "zendesk", "jira", "freshdesk", "prometheus", "datadog", "pagerduty", "custom"];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        // Field names the normalisers look for, as values too.
        prop::sample::select(vec![
            "firing",
            "resolved",
            "P1",
            "critical",
            "6",
            "done",
            "Recovered",
            "incident.resolved"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let keys = prop::sample::select(vec![
            "status",
            "alerts",
            "labels",
            "annotations",
            "fingerprint",
            "endsAt",
            "startsAt",
            "event",
            "event_type",
            "data",
            "id",
            "issue",
            "fields",
            "summary",
            "description",
            "priority",
            "status",
            "statusCategory",
            "key",
            "reporter",
            "webhookEvent",
            "detail",
            "subject",
            "ticket",
            "freshdesk_webhook",
            "ticket_id",
            "number",
            "sys_id",
            "short_description",
            "urgency",
            "state",
            "title",
            "body",
            "alert_transition",
            "tags",
            "severity",
            "metadata",
            "value",
            "content",
            "text",
            "type",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// A real-looking payload per source, to mutate.
fn sample(source: &str) -> Value {
    match source {
        "prometheus" => {
            json!({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "X", "severity": "critical"},
            "annotations": {"summary": "s", "description": "d"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1"}]})
        }
        "pagerduty" => {
            json!({"event": {"event_type": "incident.triggered", "data": {"id": "P1", "title": "t", "urgency": "high", "status": "triggered"}}})
        }
        "jira" => {
            json!({"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-1", "fields": {"summary": "s", "description": {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]},
            "priority": {"name": "High"}, "status": {"name": "Done", "statusCategory": {"key": "done"}}, "reporter": {"emailAddress": "a@b.io"}}}})
        }
        "zendesk" => {
            json!({"detail": {"id": "1", "subject": "s", "description": "d", "priority": "high", "status": "open"}})
        }
        "freshdesk" => {
            json!({"freshdesk_webhook": {"ticket_id": 1, "ticket_subject": "s", "ticket_description": "d", "ticket_priority": 3, "ticket_status": 2}})
        }
        "servicenow" => {
            json!({"number": "INC1", "sys_id": "abc", "short_description": "s", "priority": "1", "urgency": "2", "state": "6", "cmdb_ci": {"value": "x", "link": "y"}})
        }
        "datadog" => {
            json!({"id": "1", "title": "t", "body": "b", "alert_transition": "Triggered", "priority": "P1", "tags": "a,b"})
        }
        _ => json!({"title": "t", "body": "b", "priority": "high", "id": "x"}),
    }
}

/// Replaces the value at the `n`-th object key (depth first) with `with`, or removes it.
fn mutate(v: &mut Value, n: &mut usize, with: &Option<Value>) -> bool {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *n == 0 {
                    match with {
                        Some(w) => {
                            map.insert(k, w.clone());
                        }
                        None => {
                            map.remove(&k);
                        }
                    }
                    return true;
                }
                *n -= 1;
                if let Some(child) = map.get_mut(&k)
                    && mutate(child, n, with)
                {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|i| mutate(i, n, with)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_json_is_answered_or_refused(payload in arbitrary_json(), source in prop::sample::select(SOURCES.to_vec())) {
        let _ = normalise(source, &payload);
    }

    #[test]
    fn mutated_real_payloads_are_answered_or_refused(source in prop::sample::select(SOURCES.to_vec()), at in 0usize..40, with in prop::option::of(arbitrary_json())) {
        let mut payload = sample(source);
        let mut n = at;
        mutate(&mut payload, &mut n, &with);
        let _ = normalise(source, &payload);
    }

    #[test]
    fn freshdesk_repair_never_panics(body in ".{0,300}") {
        if let Some(fixed) = freshdesk::repair(&body) {
            let _ = serde_json::from_str::<Value>(&fixed);
        }
    }
}

#[test]
fn samples_are_accepted() {
    for source in SOURCES {
        assert!(normalise(source, &sample(source)).is_ok(), "{source}");
    }
}
