//! ServiceNow: an incident record from a business rule / Outbound REST message (strings
//! everywhere, references as a sys_id or `{value, link}`), or the plain
//! `title/description/severity/environment/service/ci_association` shape.
use serde_json::{Value, json};

use super::{field, missing, priority_word};
use crate::{
    domain::tickets::{Priority, Status},
    error::Result,
    ingest::Normalised,
};

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let r = ["result", "incident", "record"]
        .iter()
        .find_map(|k| payload.get(*k).filter(|v| v.is_object()))
        .unwrap_or(payload);
    let id = field(r, &["number", "sys_id", "id"]);
    let subject = field(r, &["short_description", "title", "subject"])
        .or_else(|| id.as_ref().map(|i| format!("ServiceNow {i}")))
        .ok_or_else(|| missing("short_description"))?;
    let priority = field(r, &["priority", "urgency", "severity", "impact"]).map(|p| priority(&p));
    let mut metadata = serde_json::Map::new();
    for key in [
        "number",
        "sys_id",
        "cmdb_ci",
        "ci_association",
        "environment",
        "service",
        "business_service",
        "assignment_group",
        "category",
        "state",
        "impact",
        "urgency",
    ] {
        if let Some(v) = field(r, &[key]) {
            metadata.insert(key.into(), json!(v));
        }
    }
    Ok(vec![Normalised {
        external_id: id,
        subject,
        description: field(r, &["description", "comments", "body"]).unwrap_or_default(),
        priority,
        status: field(r, &["state", "incident_state"]).and_then(|s| state(&s)),
        category: field(r, &["category"]),
        tags: vec!["servicenow".into()],
        requester_email: field(r, &["caller_email", "caller_id.email", "opened_by.email", "requester_email"]),
        metadata,
        ..Default::default()
    }])
}

/// 1 Critical, 2 High, 3 Moderate, 4 Low, 5 Planning (also the words).
fn priority(p: &str) -> Priority {
    let number = p.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty());
    match number {
        Some("1") => Priority::Urgent,
        Some("2") => Priority::High,
        Some("3") => Priority::Medium,
        Some("4") | Some("5") => Priority::Low,
        _ => priority_word(p).unwrap_or(Priority::Medium),
    }
}

/// 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled.
fn state(s: &str) -> Option<Status> {
    Some(match s.to_ascii_lowercase().as_str() {
        "1" | "new" => Status::Open,
        "2" | "in progress" | "active" => Status::InProgress,
        "3" | "on hold" => Status::Pending,
        "6" | "resolved" => Status::Resolved,
        "7" | "8" | "closed" | "canceled" | "cancelled" => Status::Closed,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn incident_record_with_strings_and_references() {
        let p = json!({"number": "INC0010023", "sys_id": "9d38", "short_description": "Email down", "description": "Outlook",
            "priority": "1", "urgency": "2", "state": "6", "cmdb_ci": {"value": "a9c0", "link": "https://x/api/now/table/cmdb_ci/a9c0"}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("INC0010023"));
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.status, Some(Status::Resolved));
        assert_eq!(t.metadata["cmdb_ci"], "a9c0");
        let closed = json!({"result": {"sys_id": "x", "short_description": "y", "state": "7", "priority": "4 - Low"}});
        let t = &normalise(&closed).unwrap()[0];
        assert_eq!((t.status, t.priority), (Some(Status::Closed), Some(Priority::Low)));
    }

    #[test]
    fn plain_shape() {
        let p = json!({"title": "DB latency", "description": "slow", "severity": "critical", "environment": "prod",
            "service": "orders", "ci_association": "db-01"});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id, None);
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.metadata["environment"], "prod");
        assert!(normalise(&json!({"description": "no title"})).is_err());
    }
}
