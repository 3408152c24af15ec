//! sea-orm entities: one module per table. Rows are plain data; rules live in `domain`.
pub mod attachment;
pub mod canned_reply;
pub mod comment;
pub mod dispatch_cursor;
pub mod event;
pub mod ingest_receipt;
pub mod integration;
pub mod kb_article;
pub mod notification;
pub mod notification_preference;
pub mod revoked_token;
pub mod ticket;
pub mod user;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
