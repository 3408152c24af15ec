//! The flexible mapping of `POST /api/integrations/webhook` (and the `custom` source):
//! `subject|title`, `description|body`, `category`, `priority` (else `severity`),
//! `customer_email|user_email`, `user_id`, `id` → external id, `platform` → source, `metadata`;
//! anything else (`severity` too) is kept in metadata.
use serde_json::{Map, Value};

use super::{priority_word, text};
use crate::{
    error::{Error, Result},
    ingest::Normalised,
};

const MAPPED: [&str; 12] = [
    "subject",
    "title",
    "description",
    "body",
    "category",
    "priority",
    "customer_email",
    "user_email",
    "user_id",
    "id",
    "platform",
    "metadata",
];

/// The item's external id, read as [`normalise`] reads it: for reporting an item that failed.
pub fn external_id(payload: &Value) -> Option<String> {
    payload.as_object()?.get("id").and_then(text)
}

pub fn normalise(payload: &Value) -> Result<Normalised> {
    let obj = payload.as_object().ok_or_else(|| Error::validation("body", "must be a JSON object"))?;
    let pick = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k).and_then(text));
    // A subject is words: a number or a boolean where it belongs is a sender's mistake, not a title.
    for key in ["subject", "title"] {
        if obj.get(key).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(Error::validation(key, "must be a string"));
        }
    }
    let subject =
        pick(&["subject", "title"]).ok_or_else(|| Error::ValidationDetail("Title or subject is required".into()))?;
    // `severity` is the alerting senders' word for it, read with the same vocabulary as every
    // other source's. Unlike `priority` it was never checked, so a value outside that vocabulary
    // leaves the priority alone rather than refusing the item.
    let priority = match pick(&["priority"]) {
        Some(p) => Some(
            priority_word(&p)
                .ok_or_else(|| Error::validation("priority", "must be one of low, medium, high, urgent"))?,
        ),
        None => pick(&["severity"]).and_then(|s| priority_word(&s)),
    };
    let mut metadata = match obj.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(Error::validation("metadata", "must be a JSON object")),
    };
    for (k, v) in obj.iter().filter(|(k, _)| !MAPPED.contains(&k.as_str())) {
        metadata.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(Normalised {
        external_id: pick(&["id"]),
        subject,
        description: pick(&["description", "body"]).unwrap_or_default(),
        priority,
        category: pick(&["category"]),
        requester_email: pick(&["customer_email", "user_email"]),
        requester_id: pick(&["user_id"]),
        source: pick(&["platform"]).map(|p| p.to_ascii_lowercase()),
        metadata,
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::tickets::Priority;
    use serde_json::json;

    #[test]
    fn maps_fields_and_keeps_the_rest() {
        let n = normalise(&json!({"title": "Login broken", "body": "500 on /login", "priority": "high", "id": 99,
            "user_email": "kim@example.com", "platform": "Shopify", "metadata": {"shop": "acme"}, "order": 7}))
        .unwrap();
        assert_eq!(n.subject, "Login broken");
        assert_eq!(n.description, "500 on /login");
        assert_eq!(n.priority, Some(Priority::High));
        assert_eq!(n.external_id.as_deref(), Some("99"));
        assert_eq!(n.requester_email.as_deref(), Some("kim@example.com"));
        assert_eq!(n.source.as_deref(), Some("shopify"));
        assert_eq!(n.metadata["shop"], "acme");
        assert_eq!(n.metadata["order"], 7);
    }

    #[test]
    fn severity_sets_the_priority_when_there_is_none() {
        let with = |extra: Value| {
            let mut item = json!({"title": "x"});
            item.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            normalise(&item).unwrap()
        };
        for (word, p) in [
            ("critical", Priority::Urgent),
            ("SEV1", Priority::Urgent),
            ("p1", Priority::Urgent),
            ("high", Priority::High),
            ("major", Priority::High),
            ("error", Priority::High),
            ("sev2", Priority::High),
            ("warning", Priority::Medium),
            ("info", Priority::Low),
        ] {
            assert_eq!(with(json!({ "severity": word })).priority, Some(p), "{word}");
        }
        let n = with(json!({"severity": "high", "priority": "low"}));
        assert_eq!(n.priority, Some(Priority::Low), "an explicit priority wins");
        assert_eq!(n.metadata["severity"], "high", "the sender's word is kept");
        assert_eq!(with(json!({"severity": "S-whatever"})).priority, None);
    }

    #[test]
    fn title_is_required_and_priority_checked() {
        let e = normalise(&json!({"description": "x"})).unwrap_err();
        assert_eq!(e.to_string(), "Title or subject is required");
        assert!(normalise(&json!({"title": "x", "priority": "whenever"})).is_err());
        assert!(normalise(&json!({"title": "x", "metadata": 3})).is_err());
        assert!(normalise(&json!({"title": false})).is_err());
    }
}
