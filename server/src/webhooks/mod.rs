//! Outbound webhooks: every notification a user receives also goes to their URL, signed per the
//! Standard Webhooks spec, durably queued in the database and retried until it lands.
pub mod endpoints;
pub mod receiver;
mod record;
mod send;
pub mod signing;
pub mod ssrf;
pub mod worker;

pub use receiver::BuiltIn;

/// The `webhook-id` of the delivery of event `event_id` to `user_id`. Deterministic, so a
/// re-dispatch could never create a second delivery, and sortable by event.
pub fn delivery_id(event_id: i64, user_id: &str) -> String {
    format!("msg_{event_id:012}_{}", user_id.replace('-', ""))
}
