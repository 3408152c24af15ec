//! Prometheus Alertmanager, webhook payload version 4: one ticket per alert `fingerprint`.
use serde_json::{Value, json};

use super::{field, get, missing, priority_word, timestamp};
use crate::{
    domain::tickets::Priority,
    error::Result,
    ingest::{AlertState, Normalised},
};

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let alerts = payload.get("alerts").and_then(Value::as_array).ok_or_else(|| missing("alerts"))?;
    if alerts.is_empty() {
        return Err(crate::error::Error::validation("alerts", "must not be empty"));
    }
    let group_status = field(payload, &["status"]);
    alerts.iter().enumerate().map(|(i, a)| alert(a, i, group_status.as_deref(), payload)).collect()
}

fn alert(a: &Value, i: usize, group_status: Option<&str>, payload: &Value) -> Result<Normalised> {
    let fingerprint = field(a, &["fingerprint"]).ok_or_else(|| missing(&format!("alerts[{i}].fingerprint")))?;
    let name = field(a, &["labels.alertname"]);
    let status = field(a, &["status"]).or(group_status.map(str::to_string)).unwrap_or_else(|| "firing".into());
    let state = if status.eq_ignore_ascii_case("resolved") { AlertState::Resolved } else { AlertState::Firing };
    let summary = field(a, &["annotations.summary", "annotations.title"]);
    let subject = summary
        .clone()
        .or_else(|| {
            name.clone().map(|n| match field(a, &["labels.instance"]) {
                Some(inst) => format!("{n} on {inst}"),
                None => n,
            })
        })
        .unwrap_or_else(|| format!("Alert {fingerprint}"));
    let description = field(a, &["annotations.description", "annotations.message"]).or(summary).unwrap_or_default();
    let severity = field(a, &["labels.severity", "labels.priority"]);
    let priority = severity.as_deref().map(|s| priority_word(s).unwrap_or(Priority::Medium));
    let mut tags = vec!["alertmanager".to_string()];
    tags.extend(name.clone());
    let mut metadata = serde_json::Map::new();
    metadata.insert("fingerprint".into(), json!(fingerprint));
    for key in ["labels", "annotations", "generatorURL", "startsAt"] {
        if let Some(v) = get(a, key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert("alert_status".into(), json!(status));
    for key in ["receiver", "groupKey", "externalURL"] {
        if let Some(v) = get(payload, key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    let ended_at = timestamp(a.get("endsAt"));
    if let Some(t) = ended_at {
        metadata.insert("endsAt".into(), json!(t));
    }
    Ok(Normalised {
        external_id: Some(fingerprint),
        subject,
        description,
        priority,
        category: Some("alert".into()),
        tags,
        metadata,
        alert: Some(state),
        started_at: timestamp(a.get("startsAt")),
        ended_at: if state == AlertState::Resolved { ended_at } else { None },
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn payload(status: &str, ends: &str) -> Value {
        json!({"version": "4", "status": status, "receiver": "ticketwire", "alerts": [
            {"status": status, "fingerprint": "f1", "labels": {"alertname": "HighCPU", "severity": "critical", "instance": "db1"},
             "annotations": {"summary": "CPU above 90%", "description": "db1 is hot"},
             "startsAt": "2026-11-22T05:00:00Z", "endsAt": ends, "generatorURL": "http://prom/graph"},
            {"status": status, "fingerprint": "f2", "labels": {"alertname": "DiskFull"}, "annotations": {},
             "startsAt": "2026-11-22T05:00:00Z", "endsAt": ends}]})
    }

    #[test]
    fn firing_alerts_become_one_item_each() {
        let items = normalise(&payload("firing", "0001-01-01T00:00:00Z")).unwrap();
        assert_eq!(items.len(), 2);
        let a = &items[0];
        assert_eq!(a.external_id.as_deref(), Some("f1"));
        assert_eq!(a.subject, "CPU above 90%");
        assert_eq!(a.description, "db1 is hot");
        assert_eq!(a.priority, Some(Priority::Urgent));
        assert_eq!(a.alert, Some(AlertState::Firing));
        assert!(a.ended_at.is_none());
        assert_eq!(items[1].subject, "DiskFull");
        assert_eq!(items[1].priority, None);
    }

    #[test]
    fn resolved_carries_end_time() {
        let items = normalise(&payload("resolved", "2026-11-22T05:02:00Z")).unwrap();
        assert_eq!(items[0].alert, Some(AlertState::Resolved));
        assert!(items[0].ended_at.is_some());
    }

    #[test]
    fn wrong_shape_names_the_field() {
        let err = normalise(&json!({"status": "firing"})).unwrap_err();
        assert!(err.to_string().contains("alerts"));
        let err = normalise(&json!({"alerts": [{"labels": {}}]})).unwrap_err();
        assert!(err.to_string().contains("fingerprint"));
    }
}
