//! Zendesk: trigger webhooks with a ticket object (or flat fields), and event webhooks
//! (`zen:event-type:ticket.*`) whose ticket is in `detail`.
use serde_json::{Value, json};

use super::{field, missing, priority_word, tags};
use crate::{
    domain::tickets::{Priority, Status},
    error::Result,
    ingest::Normalised,
};

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let t = ["detail", "ticket"].iter().find_map(|k| payload.get(*k).filter(|v| v.is_object())).unwrap_or(payload);
    let id = field(t, &["id", "ticket_id"]).ok_or_else(|| missing("id"))?;
    let subject = field(t, &["subject", "title", "raw_subject"]).unwrap_or_else(|| format!("Zendesk ticket {id}"));
    let status = field(t, &["status"]).and_then(|s| status(&s));
    let mut metadata = serde_json::Map::new();
    metadata.insert("zendesk_id".into(), json!(id));
    if payload.get("detail").is_some() {
        for key in ["type", "id"] {
            if let Some(v) = payload.get(key) {
                metadata.insert(format!("event_{key}"), v.clone());
            }
        }
    }
    if let Some(url) = field(t, &["url"]) {
        metadata.insert("url".into(), json!(url));
    }
    let mut labels = tags(t.get("tags"));
    labels.insert(0, "zendesk".into());
    Ok(vec![Normalised {
        external_id: Some(id),
        subject,
        description: field(t, &["description", "latest_comment", "comment.body"]).unwrap_or_default(),
        priority: field(t, &["priority"]).map(|p| priority_word(&p).unwrap_or(Priority::Medium)),
        status,
        tags: labels,
        requester_email: field(t, &["requester.email", "requester_email", "requester.email_address"]),
        metadata,
        ..Default::default()
    }])
}

fn status(s: &str) -> Option<Status> {
    Some(match s.to_ascii_lowercase().as_str() {
        "new" | "open" => Status::Open,
        "pending" | "hold" | "on-hold" => Status::Pending,
        "solved" => Status::Resolved,
        "closed" => Status::Closed,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn trigger_payload() {
        let p = json!({"ticket": {"id": 35436, "title": "Help, my printer is on fire!", "description": "Smoke",
            "priority": "urgent", "status": "open", "requester": {"email": "pat@example.com"}, "tags": "printer,fire"}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("35436"));
        assert_eq!(t.subject, "Help, my printer is on fire!");
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.status, Some(Status::Open));
        assert_eq!(t.requester_email.as_deref(), Some("pat@example.com"));
        assert_eq!(t.tags, vec!["zendesk", "printer", "fire"]);
    }

    #[test]
    fn event_webhook_uses_detail() {
        let p = json!({"type": "zen:event-type:ticket.status_changed", "id": "evt-1", "detail": {
            "id": "35436", "subject": "Printer", "description": "Smoke", "priority": "HIGH", "status": "SOLVED"}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("35436"));
        assert_eq!(t.priority, Some(Priority::High));
        assert_eq!(t.status, Some(Status::Resolved));
        assert!(normalise(&json!({"ticket": {"subject": "no id"}})).is_err());
    }
}
