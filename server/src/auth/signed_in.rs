//! The users behind tokens, remembered between requests where this process is the database's
//! only writer.
//!
//! Every request reads its user's row, to check that the account is still active and what role
//! it has. On SQLite that read is a hand-off to a connection's thread and back: under load the
//! largest database cost of a small request, and the only one a ticket creation does not share
//! with others (its insert is group-committed). A single node on SQLite is the only writer of
//! its database, and every change to a user row records a user event through
//! [`crate::domain::Tx`], whose commit forgets that user here before the change is answered; the
//! next request reads the row again. Where several nodes share a database, another node's
//! change would not reach this memory, so there is none ([`SignedInUsers::new`]).
use std::{collections::HashMap, sync::Mutex};

use crate::entity::user;

/// Past this many users the memory starts over (a row is a few hundred bytes).
const CAPACITY: usize = 50_000;

#[derive(Default)]
pub struct SignedInUsers {
    enabled: bool,
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    users: HashMap<String, user::Model>,
    /// How many times a user was forgotten: see [`SignedInUsers::remember`].
    forgets: u64,
}

impl SignedInUsers {
    /// `enabled` only where this process is the only writer of the users table.
    pub fn new(enabled: bool) -> Self {
        Self { enabled, memory: Mutex::default() }
    }

    pub fn get(&self, id: &str) -> Option<user::Model> {
        if !self.enabled {
            return None;
        }
        self.memory().users.get(id).cloned()
    }

    /// To be taken before reading a row that may be remembered.
    pub fn era(&self) -> u64 {
        self.memory().forgets
    }

    /// Remembers `user`, read from the database after [`Self::era`] returned `era`, unless a
    /// user was forgotten since: the row read may predate that change.
    pub fn remember(&self, user: user::Model, era: u64) {
        if !self.enabled {
            return;
        }
        let mut memory = self.memory();
        if memory.forgets != era {
            return;
        }
        if memory.users.len() >= CAPACITY {
            memory.users.clear();
        }
        memory.users.insert(user.id.clone(), user);
    }

    /// Forgets a user whose row changed (called after the change's commit).
    pub fn forget(&self, id: &str) {
        if !self.enabled {
            return;
        }
        let mut memory = self.memory();
        memory.users.remove(id);
        memory.forgets += 1;
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Nothing here can panic while holding the lock; recover rather than spread a poison.
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str) -> user::Model {
        let now = chrono::Utc::now();
        user::Model {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: name.into(),
            password_hash: String::new(),
            role: "customer".into(),
            is_active: true,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn a_row_read_before_a_change_is_not_remembered_after_it() {
        let users = SignedInUsers::new(true);
        let era = users.era();
        // Another request changes and commits user b while this one was reading user a.
        users.forget("b");
        users.remember(user("a", "old"), era);
        assert!(users.get("a").is_none());
        users.remember(user("a", "new"), users.era());
        assert_eq!(users.get("a").unwrap().name, "new");
        users.forget("a");
        assert!(users.get("a").is_none());
    }

    #[test]
    fn nothing_is_remembered_when_disabled() {
        let users = SignedInUsers::new(false);
        users.remember(user("a", "x"), users.era());
        assert!(users.get("a").is_none());
    }
}
