//! Datadog webhooks with the default template variables (`id`, `title`, `body`,
//! `alert_transition`, `priority`, `tags`) plus `alert_cycle_key`, `alert_id`, `alert_priority`.
use serde_json::{Value, json};

use super::{field, missing, priority_word, tags};
use crate::{
    domain::tickets::Status,
    error::Result,
    ingest::{AlertState, Normalised},
};

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let id = field(payload, &["alert_cycle_key", "aggregate", "alert_id", "id"])
        .ok_or_else(|| missing("alert_cycle_key or id"))?;
    let transition = field(payload, &["alert_transition", "alert_status"]).unwrap_or_default();
    let alert = match transition.to_ascii_lowercase().as_str() {
        "recovered" | "ok" | "resolved" => AlertState::Resolved,
        _ => AlertState::Firing,
    };
    let priority = field(payload, &["alert_priority"])
        .and_then(|p| priority_word(&p))
        .or_else(|| field(payload, &["priority"]).and_then(|p| priority_word(&p)));
    let subject =
        field(payload, &["title", "event_title", "alert_title"]).unwrap_or_else(|| format!("Datadog alert {id}"));
    let mut metadata = serde_json::Map::new();
    for key in [
        "id",
        "alert_id",
        "alert_cycle_key",
        "alert_transition",
        "alert_type",
        "alert_metric",
        "alert_query",
        "hostname",
        "link",
        "url",
        "org",
        "event_type",
        "date",
        "last_updated",
        "snapshot",
        "tags",
    ] {
        if let Some(v) = payload.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert("alert_status".into(), json!(if alert == AlertState::Resolved { "resolved" } else { "firing" }));
    let mut labels = tags(payload.get("tags"));
    labels.insert(0, "datadog".into());
    Ok(vec![Normalised {
        external_id: Some(id),
        subject,
        description: field(payload, &["body", "text_only_message", "event_msg"]).unwrap_or_default(),
        priority,
        status: (alert == AlertState::Resolved).then_some(Status::Resolved),
        category: Some("alert".into()),
        tags: labels,
        metadata,
        alert: Some(alert),
        ..Default::default()
    }])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::tickets::Priority;

    #[test]
    fn triggered_then_recovered() {
        let p = json!({"id": "7481", "alert_cycle_key": "6897", "title": "[Triggered] CPU high", "body": "cpu > 90",
            "alert_transition": "Triggered", "alert_priority": "P2", "priority": "normal", "tags": "env:prod,team:core"});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("6897"));
        assert_eq!(t.priority, Some(Priority::High));
        assert_eq!(t.alert, Some(AlertState::Firing));
        assert_eq!(t.tags, vec!["datadog", "env:prod", "team:core"]);
        let mut r = p.clone();
        r["alert_transition"] = json!("Recovered");
        let t = &normalise(&r).unwrap()[0];
        assert_eq!((t.alert, t.status), (Some(AlertState::Resolved), Some(Status::Resolved)));
    }

    #[test]
    fn falls_back_to_event_id_and_requires_one() {
        let t = &normalise(&json!({"id": "1", "title": "x", "priority": "low"})).unwrap()[0];
        assert_eq!((t.external_id.as_deref(), t.priority), (Some("1"), Some(Priority::Low)));
        assert!(normalise(&json!({"title": "x"})).is_err());
    }
}
