//! Jira Cloud/Server issue webhooks: one ticket per `issue.key`.
use serde_json::{Value, json};

use super::{field, get, missing, priority_word, tags};
use crate::{
    domain::tickets::{Priority, Status},
    error::Result,
    ingest::Normalised,
};

pub fn normalise(payload: &Value) -> Result<Vec<Normalised>> {
    let issue = payload.get("issue").filter(|i| i.is_object()).ok_or_else(|| missing("issue"))?;
    let key = field(issue, &["key", "id"]).ok_or_else(|| missing("issue.key"))?;
    let fields = issue.get("fields").cloned().unwrap_or(Value::Null);
    let subject = field(&fields, &["summary"]).unwrap_or_else(|| format!("Jira issue {key}"));
    let description = fields.get("description").map(flatten).unwrap_or_default();
    let priority = field(&fields, &["priority.name"]).map(|p| priority_word(&p).unwrap_or(Priority::Medium));
    let status = jira_status(&fields);
    let event = field(payload, &["webhookEvent"]);
    let mut metadata = serde_json::Map::new();
    metadata.insert("issue_key".into(), json!(key));
    for (k, path) in [("issue_id", "id"), ("self", "self")] {
        if let Some(v) = get(issue, path) {
            metadata.insert(k.into(), v.clone());
        }
    }
    for (k, path) in [("project", "project.key"), ("issue_type", "issuetype.name"), ("jira_status", "status.name")] {
        if let Some(v) = get(&fields, path) {
            metadata.insert(k.into(), v.clone());
        }
    }
    if let Some(e) = &event {
        metadata.insert("webhook_event".into(), json!(e));
    }
    let mut labels = tags(fields.get("labels"));
    labels.insert(0, "jira".into());
    Ok(vec![Normalised {
        external_id: Some(key),
        subject,
        description,
        priority,
        status: if event.as_deref() == Some("jira:issue_deleted") { Some(Status::Closed) } else { status },
        tags: labels,
        requester_email: field(&fields, &["reporter.emailAddress", "creator.emailAddress"]),
        metadata,
        ..Default::default()
    }])
}

fn jira_status(fields: &Value) -> Option<Status> {
    match field(fields, &["status.statusCategory.key"]).as_deref() {
        Some("done") => return Some(Status::Resolved),
        Some("indeterminate") => return Some(Status::InProgress),
        Some("new") => return Some(Status::Open),
        _ => {}
    }
    let name = field(fields, &["status.name"])?.to_ascii_lowercase();
    Some(match name.as_str() {
        "done" | "resolved" => Status::Resolved,
        "closed" => Status::Closed,
        "in progress" | "in review" => Status::InProgress,
        _ => Status::Open,
    })
}

/// Jira's `description`: plain text (Server, API v2) or an Atlassian Document Format tree.
pub fn flatten(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let mut out = String::new();
            adf(v, &mut out);
            out.trim().to_string()
        }
        _ => String::new(),
    }
}

fn adf(node: &Value, out: &mut String) {
    let kind = node.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
        "hardBreak" => out.push('\n'),
        "mention" | "emoji" | "status" | "date" => {
            let attrs = node.get("attrs").cloned().unwrap_or(Value::Null);
            out.push_str(&field(&attrs, &["text", "shortName", "timestamp"]).unwrap_or_default());
        }
        "inlineCard" | "blockCard" => out.push_str(&field(node, &["attrs.url"]).unwrap_or_default()),
        _ => {}
    }
    if kind == "listItem" {
        out.push_str("- ");
    }
    if let Some(children) = node.get("content").and_then(Value::as_array) {
        for c in children {
            adf(c, out);
        }
    }
    if matches!(kind, "paragraph" | "heading" | "codeBlock" | "blockquote" | "rule" | "tableRow")
        && !out.ends_with('\n')
    {
        out.push('\n');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_with_adf_description() {
        let p = json!({"webhookEvent": "jira:issue_created", "issue": {"id": "10001", "key": "OPS-7", "fields": {
            "summary": "VPN drops", "priority": {"name": "Highest"}, "labels": ["network"],
            "reporter": {"emailAddress": "rae@example.com"},
            "status": {"name": "To Do", "statusCategory": {"key": "new"}},
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "It drops"}, {"type": "hardBreak"}, {"type": "text", "text": "every hour"}]},
                {"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "on wifi"}]}]}]}]}}}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.external_id.as_deref(), Some("OPS-7"));
        assert_eq!(t.subject, "VPN drops");
        assert_eq!(t.description, "It drops\nevery hour\n- on wifi");
        assert_eq!(t.priority, Some(Priority::Urgent));
        assert_eq!(t.status, Some(Status::Open));
        assert_eq!(t.requester_email.as_deref(), Some("rae@example.com"));
        assert_eq!(t.tags, vec!["jira", "network"]);
    }

    #[test]
    fn done_category_resolves_and_string_description() {
        let p = json!({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-7", "fields": {
            "summary": "VPN drops", "description": "plain", "status": {"name": "Shipped", "statusCategory": {"key": "done"}}}}});
        let t = &normalise(&p).unwrap()[0];
        assert_eq!(t.status, Some(Status::Resolved));
        assert_eq!(t.description, "plain");
        assert!(normalise(&json!({"webhookEvent": "jira:issue_created"})).unwrap_err().to_string().contains("issue"));
    }
}
