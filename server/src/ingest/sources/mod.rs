//! One normaliser per sender: pure functions from its native payload to [`Normalised`] items.
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Normalised;
use crate::{
    domain::tickets::Priority,
    error::{Error, Result},
};

pub mod datadog;
pub mod flexible;
pub mod freshdesk;
#[cfg(test)]
mod fuzz;
pub mod jira;
pub mod pagerduty;
pub mod prometheus;
pub mod servicenow;
pub mod zendesk;

/// The sources with a native route, `POST /api/v1/tickets/webhook/{source}`.
pub const SOURCES: [&str; 8] =
    ["servicenow", "zendesk", "jira", "freshdesk", "prometheus", "datadog", "pagerduty", "custom"];

pub fn is_known(source: &str) -> bool {
    SOURCES.contains(&source)
}

/// Normalises `payload` as `source` sends it. `source` must be [known](is_known).
pub fn normalise(source: &str, payload: &Value) -> Result<Vec<Normalised>> {
    if !payload.is_object() {
        return Err(Error::validation("body", "must be a JSON object"));
    }
    match source {
        "servicenow" => servicenow::normalise(payload),
        "zendesk" => zendesk::normalise(payload),
        "jira" => jira::normalise(payload),
        "freshdesk" => freshdesk::normalise(payload),
        "prometheus" => prometheus::normalise(payload),
        "datadog" => datadog::normalise(payload),
        "pagerduty" => pagerduty::normalise(payload),
        _ => flexible::normalise(payload).map(|n| vec![n]),
    }
}

/// A value as text: strings (trimmed, non-empty), numbers and booleans, and ServiceNow-style
/// references `{value, display_value, link}`.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("value").or_else(|| o.get("display_value")).and_then(text),
        _ => None,
    }
}

/// The value at a dotted `path` (`issue.fields.summary`).
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key)).filter(|v| !v.is_null())
}

/// The first of `paths` that holds text.
pub fn field(v: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| get(v, p).and_then(text))
}

/// Priority from the words and numbers senders use; `None` when unrecognised.
pub fn priority_word(word: &str) -> Option<Priority> {
    let w = word.trim().to_ascii_lowercase();
    Some(match w.as_str() {
        "critical" | "urgent" | "p1" | "highest" | "blocker" | "emergency" | "disaster" | "sev1" | "fatal" => {
            Priority::Urgent
        }
        "high" | "p2" | "major" | "error" | "sev2" => Priority::High,
        "medium" | "normal" | "p3" | "moderate" | "warning" | "warn" | "sev3" | "average" => Priority::Medium,
        "low" | "lowest" | "p4" | "p5" | "minor" | "trivial" | "info" | "informational" | "planning" | "sev4"
        | "sev5" | "none" => Priority::Low,
        _ => return None,
    })
}

/// An RFC 3339 timestamp; Alertmanager's zero time (`0001-01-01…`) means "not yet".
pub fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

/// Tags from an array or a comma-separated string.
pub fn tags(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        _ => Vec::new(),
    };
    out.iter_mut().for_each(|t| *t = t.chars().take(64).collect());
    out.truncate(50);
    out
}

/// `name is required` as a 422 naming the missing field.
pub fn missing(field: &str) -> Error {
    Error::validation(field, "is required")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        let v = json!({"a": {"b": " x "}, "n": 3, "r": {"value": "abc", "link": "http://x"}, "e": ""});
        assert_eq!(field(&v, &["e", "a.b"]).as_deref(), Some("x"));
        assert_eq!(field(&v, &["n"]).as_deref(), Some("3"));
        assert_eq!(field(&v, &["r"]).as_deref(), Some("abc"));
        assert_eq!(priority_word("P1"), Some(Priority::Urgent));
        assert_eq!(priority_word("bogus"), None);
        assert!(timestamp(Some(&json!("0001-01-01T00:00:00Z"))).is_none());
        assert!(timestamp(Some(&json!("2026-11-22T05:00:00Z"))).is_some());
        assert_eq!(tags(Some(&json!("a, b,,c"))), vec!["a", "b", "c"]);
        assert!(normalise("jira", &json!([1])).is_err());
    }
}
