//! PagerDuty webhooks v3: `event.event_type` `incident.*` with the incident in `event.data`, and
//! `pagey.ping`, the test PagerDuty sends when a subscription is made or tested (nothing to ingest).
use serde_json::{Value, json};

use super::{field, get, missing, priority_word, timestamp};
use crate::{
    domain::tickets::{Priority, Status},
    error::{Error, Result},
    ingest::{AlertState, Normalised},
};

/// The event type of PagerDuty's test delivery.
pub const PING: &str = "pagey.ping";

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let event = payload.get("event").filter(|e| e.is_object()).ok_or_else(|| missing("event"))?;
    let event_type = field(event, &["event_type"]).ok_or_else(|| missing("event.event_type"))?;
    if event_type == PING {
        return Ok(Vec::new());
    }
    let Some(kind) = event_type.strip_prefix("incident.") else {
        return Err(Error::validation("event.event_type", format!("`{event_type}` is not an incident event")));
    };
    let data = event.get("data").filter(|d| d.is_object()).ok_or_else(|| missing("event.data"))?;
    let id = field(data, &["id"]).ok_or_else(|| missing("event.data.id"))?;
    let status_word = match kind {
        "triggered" | "acknowledged" | "resolved" => kind.to_string(),
        _ => field(data, &["status"]).unwrap_or_default(),
    };
    let (status, alert) = match status_word.as_str() {
        "triggered" => (Some(Status::Open), Some(AlertState::Firing)),
        "acknowledged" => (Some(Status::InProgress), None),
        "resolved" => (Some(Status::Resolved), Some(AlertState::Resolved)),
        _ => (None, None),
    };
    let priority = field(data, &["priority.summary", "priority.name"]).and_then(|p| priority_word(&p)).or_else(|| {
        match field(data, &["urgency"]).as_deref() {
            Some("high") => Some(Priority::High),
            Some("low") => Some(Priority::Low),
            _ => None,
        }
    });
    let title = field(data, &["title", "summary"]).unwrap_or_else(|| format!("PagerDuty incident {id}"));
    let service = field(data, &["service.summary"]);
    let url = field(data, &["html_url"]);
    let mut description =
        format!("PagerDuty incident {}", field(data, &["number"]).map(|n| format!("#{n}")).unwrap_or(id.clone()));
    if let Some(s) = &service {
        description.push_str(&format!(" on {s}"));
    }
    if let Some(u) = &url {
        description.push_str(&format!("\n{u}"));
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("event_type".into(), json!(event_type));
    for (key, path) in [
        ("incident_number", "number"),
        ("html_url", "html_url"),
        ("service", "service.summary"),
        ("urgency", "urgency"),
        ("incident_status", "status"),
    ] {
        if let Some(v) = get(data, path) {
            metadata.insert(key.into(), v.clone());
        }
    }
    Ok(vec![Normalised {
        external_id: Some(id),
        subject: title,
        description,
        priority,
        status,
        category: Some("incident".into()),
        tags: vec!["pagerduty".into()],
        metadata,
        alert,
        started_at: timestamp(data.get("created_at")),
        ended_at: if alert == Some(AlertState::Resolved) { timestamp(event.get("occurred_at")) } else { None },
        ..Default::default()
    }])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(t: &str) -> Value {
        json!({"event": {"id": "e1", "event_type": t, "occurred_at": "2026-11-22T05:10:00Z", "data": {
            "id": "PGR0VU2", "type": "incident", "number": 2, "title": "Checkout is down", "status": "triggered",
            "urgency": "high", "priority": {"summary": "P1"}, "service": {"summary": "Checkout"},
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "created_at": "2026-11-22T05:00:00Z"}}})
    }

    #[test]
    fn status_follows_the_incident() {
        let t = &normalise(&event("incident.triggered")).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("PGR0VU2"));
        assert_eq!(t.subject, "Checkout is down");
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.status, Some(Status::Open));
        assert!(t.description.contains("Checkout"));
        assert_eq!(normalise(&event("incident.acknowledged")).unwrap()[0].status, Some(Status::InProgress));
        let r = &normalise(&event("incident.resolved")).unwrap()[0];
        assert_eq!((r.status, r.alert), (Some(Status::Resolved), Some(AlertState::Resolved)));
    }

    #[test]
    fn non_incident_events_and_missing_data_are_refused() {
        assert!(normalise(&json!({"event": {"event_type": "pagey.ping"}})).unwrap().is_empty());
        assert!(normalise(&json!({"event": {"event_type": "service.updated"}})).is_err());
        assert!(
            normalise(&json!({"event": {"event_type": "incident.triggered"}}))
                .unwrap_err()
                .to_string()
                .contains("event.data")
        );
        assert!(normalise(&json!({})).is_err());
    }
}
