//! Field checks shared by every resource. Errors name the field.
use serde_json::Value;

use crate::error::{Error, Result};

/// A required text field's rule as a JSON Schema pattern: no NUL, and not only whitespace.
pub const REQUIRED_TEXT_PATTERN: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";

/// The schema of one tag, for the OpenAPI document: what [`tags`] accepts.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some(REQUIRED_TEXT_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for Tag {}

/// A required single-line-ish text: trimmed, non-empty, at most `max` characters, no NUL.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Free text: at most `max` characters and no NUL (PostgreSQL cannot store it). Kept verbatim.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(Error::validation(field, format!("must be at most {max} characters")));
    }
    if value.contains('\0') {
        return Err(Error::validation(field, "must not contain NUL characters"));
    }
    Ok(value.to_string())
}

/// The Unicode bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069) and the implicit marks (U+200E, U+200F, U+061C). In a name they make text
/// display in another order than it is stored: `invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `value` without its bidirectional controls ([`is_bidi_control`]).
pub fn without_bidi_controls(value: &str) -> String {
    value.chars().filter(|&c| !is_bidi_control(c)).collect()
}

pub fn email(field: &str, value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let valid = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(value.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
    if !valid {
        return Err(Error::validation(field, "is not a valid email address"));
    }
    Ok(value)
}

pub fn password(field: &str, value: &str) -> Result<String> {
    let n = value.chars().count();
    if !(8..=256).contains(&n) {
        return Err(Error::validation(field, "must be between 8 and 256 characters"));
    }
    if value.contains('\0') {
        return Err(Error::validation(field, "must not contain NUL characters"));
    }
    Ok(value.to_string())
}

/// Up to 50 distinct, non-empty tags of at most 64 characters each.
pub fn tags(field: &str, tags: &[String]) -> Result<Value> {
    if tags.len() > 50 {
        return Err(Error::validation(field, "at most 50 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = required_text(field, tag, 64)?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(Value::from(out))
}

/// A JSON object of bounded size, without NUL anywhere.
pub fn metadata(field: &str, value: &Value) -> Result<Value> {
    if !value.is_object() {
        return Err(Error::validation(field, "must be a JSON object"));
    }
    let text = value.to_string();
    if text.len() > 64 * 1024 {
        return Err(Error::validation(field, "must be at most 64 KiB of JSON"));
    }
    if text.contains("\\u0000") {
        return Err(Error::validation(field, "must not contain NUL characters"));
    }
    Ok(value.clone())
}

/// An id in a request body: must look like one of ours (all ids are UUIDs).
pub fn id(field: &str, value: &str) -> Result<String> {
    uuid::Uuid::parse_str(value).map(|u| u.to_string()).map_err(|_| Error::validation(field, "is not a valid id"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(required_text("subject", "  ", 10).is_err());
        assert_eq!(required_text("subject", " hi ", 10).unwrap(), "hi");
        assert!(required_text("subject", "a\0b", 10).is_err());
        assert!(required_text("subject", &"x".repeat(11), 10).is_err());
    }

    #[test]
    fn bidi_controls_are_removed_and_nothing_else() {
        assert_eq!(without_bidi_controls("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        let all = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}";
        assert_eq!(without_bidi_controls(&format!("a{all}b")), "ab");
        assert_eq!(without_bidi_controls("résumé שלום.pdf"), "résumé שלום.pdf");
    }

    #[test]
    fn email_rules() {
        assert_eq!(email("email", " Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@x.io", "a@b", "a b@c.io", "a@.io", "a@b@c.io"] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_deduplicated() {
        let t = tags("tags", &["a".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(t, serde_json::json!(["a", "b"]));
    }
}
