//! Schema migrations, shared by SQLite and PostgreSQL. One file per migration, named by date.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_hooks;
mod m20261122_000003_webhooks;
mod m20261122_000004_integrations;
mod m20261202_000001_sessions;
mod m20261203_000001_ticket_numbers;
mod m20261203_000002_canned_replies_and_preferences;
mod m20261204_000001_retention;
mod m20261205_000001_list_indexes;
mod m20261205_000002_full_text_search;
mod m20261206_000001_search_vocabulary;
mod m20261207_000001_search_window;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_hooks::Migration),
            Box::new(m20261122_000003_webhooks::Migration),
            Box::new(m20261122_000004_integrations::Migration),
            Box::new(m20261202_000001_sessions::Migration),
            Box::new(m20261203_000001_ticket_numbers::Migration),
            Box::new(m20261203_000002_canned_replies_and_preferences::Migration),
            Box::new(m20261204_000001_retention::Migration),
            Box::new(m20261205_000001_list_indexes::Migration),
            Box::new(m20261205_000002_full_text_search::Migration),
            Box::new(m20261206_000001_search_vocabulary::Migration),
            Box::new(m20261207_000001_search_window::Migration),
        ]
    }
}

/// A non-unique index on `table(columns…)`, named after them.
pub(crate) fn index(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("idx_{table}_{}", columns.join("_"))).table(table);
    for c in columns {
        stmt.col(*c);
    }
    stmt.if_not_exists().take()
}
