//! Freshdesk automation webhooks: the `freshdesk_webhook` object of `ticket_*` placeholders
//! (what simple mode sends), or the same fields unwrapped (an advanced-mode template).
use serde_json::{Value, json};

use super::{field, missing, priority_word, tags, text};
use crate::{
    domain::tickets::{Priority, Status},
    error::Result,
    ingest::Normalised,
};

/// Where each form names the requester, best first: `{{ticket.requester.*}}` and
/// `{{ticket.contact.*}}` are the same person in Freshdesk.
const REQUESTER_EMAIL: [&str; 3] = ["ticket_requester_email", "ticket_contact_email", "requester_email"];
const REQUESTER_NAME: [&str; 3] = ["ticket_requester_name", "ticket_contact_name", "requester_name"];

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let t = payload.get("freshdesk_webhook").filter(|v| v.is_object()).unwrap_or(payload);
    let id = field(t, &["ticket_id", "ticket_display_id"]).ok_or_else(|| missing("freshdesk_webhook.ticket_id"))?;
    let subject = field(t, &["ticket_subject"]).unwrap_or_else(|| format!("Freshdesk ticket {id}"));
    let mut metadata = serde_json::Map::new();
    metadata.insert("freshdesk_id".into(), json!(id));
    for key in ["ticket_url", "ticket_type", "ticket_source", "ticket_company_name", "triggered_event", "ticket_status"]
    {
        if let Some(v) = t.get(key).and_then(text) {
            metadata.insert(key.into(), json!(v));
        }
    }
    let (requester_email, requester_name) = requester(t);
    if let Some(name) = requester_name {
        metadata.insert("requester_name".into(), json!(name));
    }
    let mut labels = tags(t.get("ticket_tags"));
    labels.insert(0, "freshdesk".into());
    Ok(vec![Normalised {
        external_id: Some(id),
        subject,
        description: field(t, &["ticket_description", "ticket_description_text"]).unwrap_or_default(),
        priority: field(t, &["ticket_priority"]).map(|p| priority(&p)),
        status: field(t, &["ticket_status"]).and_then(|s| status(&s)),
        tags: labels,
        requester_email,
        metadata,
        ..Default::default()
    }])
}

/// The requester's address and name. A placeholder may expand to a mailbox, `Lee Buyer
/// <lee@example.com>`, which is no address as it stands: the address is taken from the angle
/// brackets and the rest is the name, unless a name field says otherwise.
fn requester(t: &Value) -> (Option<String>, Option<String>) {
    let name = field(t, &REQUESTER_NAME);
    let Some(email) = field(t, &REQUESTER_EMAIL) else { return (None, name) };
    match email.rsplit_once('<').and_then(|(before, rest)| Some((before, rest.strip_suffix('>')?))) {
        Some((display, address)) => {
            let display = display.trim().trim_matches('"').trim();
            let name = name.or_else(|| (!display.is_empty()).then(|| display.to_string()));
            (Some(address.trim().to_string()).filter(|a| !a.is_empty()), name)
        }
        None => (Some(email), name),
    }
}

/// 1 Low, 2 Medium, 3 High, 4 Urgent, or the names.
fn priority(p: &str) -> Priority {
    match p {
        "1" => Priority::Low,
        "2" => Priority::Medium,
        "3" => Priority::High,
        "4" => Priority::Urgent,
        word => priority_word(word).unwrap_or(Priority::Medium),
    }
}

/// 2 Open, 3 Pending, 4 Resolved, 5 Closed, or the names.
fn status(s: &str) -> Option<Status> {
    Some(match s.to_ascii_lowercase().as_str() {
        "2" | "open" => Status::Open,
        "3" | "pending" | "waiting on customer" | "waiting on third party" => Status::Pending,
        "4" | "resolved" => Status::Resolved,
        "5" | "closed" => Status::Closed,
        _ => return None,
    })
}

/// Freshdesk's `{{triggered_event}}` expands to `{ticket_action:created}`, which is not JSON
/// when the template leaves it unquoted. Quotes such values so the body parses.
pub fn repair(body: &str) -> Option<String> {
    let key = "\"triggered_event\"";
    let start = body.find(key)? + key.len();
    let rest = &body[start..];
    let colon = rest.find(':')?;
    let after = &rest[colon + 1..];
    let value_start = after.len() - after.trim_start().len();
    let value = &after[value_start..];
    if !value.starts_with('{') {
        return None;
    }
    let end = value.find('}')? + 1;
    let raw = &value[..end];
    let quoted = serde_json::to_string(raw).ok()?;
    let offset = start + colon + 1 + value_start;
    Some(format!("{}{}{}", &body[..offset], quoted, &body[offset + end..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numeric_priority_and_status() {
        let p = json!({"freshdesk_webhook": {"ticket_id": 42, "ticket_subject": "Refund", "ticket_description": "<p>Please</p>",
            "ticket_priority": "4", "ticket_status": "Resolved", "ticket_contact_email": "lee@example.com", "ticket_tags": "billing"}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("42"));
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.status, Some(Status::Resolved));
        assert_eq!(t.requester_email.as_deref(), Some("lee@example.com"));
        assert_eq!(
            normalise(&json!({"freshdesk_webhook": {"ticket_id": 1, "ticket_status": 3}})).unwrap()[0].status,
            Some(Status::Pending)
        );
        assert!(normalise(&json!({"freshdesk_webhook": {}})).is_err());
    }

    #[test]
    fn requester_wrapped_or_not() {
        let fields = json!({"ticket_id": 7, "ticket_subject": "Login", "ticket_requester_email": "Kim@Example.com",
            "ticket_requester_name": "Kim Lee", "ticket_priority": "Urgent", "ticket_status": "Pending"});
        let wrapped = &normalise(&json!({ "freshdesk_webhook": fields.clone() })).unwrap()[0];
        let plain = &normalise(&fields).unwrap()[0];
        assert_eq!(wrapped, plain);
        assert_eq!(wrapped.requester_email.as_deref(), Some("Kim@Example.com"));
        assert_eq!(wrapped.metadata["requester_name"], "Kim Lee");
        assert_eq!((wrapped.priority, wrapped.status), (Some(Priority::Urgent), Some(Status::Pending)));

        let mailbox =
            json!({"freshdesk_webhook": {"ticket_id": 8, "requester_email": "\"Ana Ruiz\" <ana@example.com>"}});
        let t = &normalise(&mailbox).unwrap()[0];
        assert_eq!(t.requester_email.as_deref(), Some("ana@example.com"));
        assert_eq!(t.metadata["requester_name"], "Ana Ruiz");
        let bare = json!({"freshdesk_webhook": {"ticket_id": 9, "ticket_contact_email": "<bo@example.com>"}});
        let t = &normalise(&bare).unwrap()[0];
        assert_eq!((t.requester_email.as_deref(), t.metadata.get("requester_name")), (Some("bo@example.com"), None));
        let none = &normalise(&json!({"freshdesk_webhook": {"ticket_id": 10}})).unwrap()[0];
        assert_eq!(none.requester_email, None);
    }

    #[test]
    fn unquoted_triggered_event_is_repaired() {
        let body = r#"{"freshdesk_webhook": {"ticket_id": 7, "triggered_event": {ticket_action:created}, "ticket_subject": "x"}}"#;
        assert!(serde_json::from_str::<Value>(body).is_err());
        let fixed: Value = serde_json::from_str(&repair(body).unwrap()).unwrap();
        assert_eq!(fixed["freshdesk_webhook"]["triggered_event"], "{ticket_action:created}");
        assert!(repair(r#"{"a": 1}"#).is_none());
    }
}
