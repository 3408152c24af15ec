//! ticketwire's core: the helpdesk's operations and everything they stand on (the visibility
//! policy, the entities, the database and its writers' handle, who is asking, attachment storage,
//! configuration, the one error type). The server crate adds the HTTP API, the hooks pipeline,
//! Socket.IO, webhooks and ingestion on top; nothing here can reach them.
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod policy;
pub mod sqlite_rank;
pub mod storage;
