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
//!
//! A row is remembered with the tokens it was read for, and only those are let through
//! without a read: that read also checked that the token was not signed out of. Signing out
//! forgets the user, like any change to their row, so the next request with that token reads
//! again and is refused.
use std::{collections::HashMap, sync::Mutex};

use crate::entity::user;

/// Past this many users the memory starts over (a row is a few hundred bytes).
const CAPACITY: usize = 50_000;

/// Tokens remembered per user (one a device, say); past that the oldest is read again.
const TOKENS_PER_USER: usize = 8;

#[derive(Default)]
pub struct SignedInUsers {
    enabled: bool,
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    users: HashMap<String, Remembered>,
    /// How many times a user was forgotten: see [`SignedInUsers::remember`].
    forgets: u64,
}

struct Remembered {
    user: user::Model,
    /// The `jti`s found not signed out of when `user` was read.
    tokens: Vec<String>,
}

impl SignedInUsers {
    /// `enabled` only where this process is the only writer of the users table.
    pub fn new(enabled: bool) -> Self {
        Self { enabled, memory: Mutex::default() }
    }

    /// The user `id`, if remembered for the token `jti`.
    pub fn get(&self, id: &str, jti: &str) -> Option<user::Model> {
        if !self.enabled {
            return None;
        }
        let memory = self.memory();
        let remembered = memory.users.get(id)?;
        remembered.tokens.iter().any(|t| t == jti).then(|| remembered.user.clone())
    }

    /// To be taken before reading a row that may be remembered.
    pub fn era(&self) -> u64 {
        self.memory().forgets
    }

    /// Remembers `user` for the token `jti`, both read from the database after [`Self::era`]
    /// returned `era`, unless a user was forgotten since: the read may predate that change.
    pub fn remember(&self, user: user::Model, jti: &str, era: u64) {
        if !self.enabled {
            return;
        }
        let mut memory = self.memory();
        if memory.forgets != era {
            return;
        }
        if memory.users.len() >= CAPACITY && !memory.users.contains_key(&user.id) {
            memory.users.clear();
        }
        // The same era: the same row as any remembered before, and the tokens remembered with
        // it are still not signed out of.
        let remembered = match memory.users.entry(user.id.clone()) {
            std::collections::hash_map::Entry::Occupied(entry) => {
                let remembered = entry.into_mut();
                remembered.user = user;
                remembered
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(Remembered { user, tokens: Vec::with_capacity(1) })
            }
        };
        if !remembered.tokens.iter().any(|t| t == jti) {
            if remembered.tokens.len() >= TOKENS_PER_USER {
                remembered.tokens.remove(0);
            }
            remembered.tokens.push(jti.to_string());
        }
    }

    /// Forgets a user whose row changed or who signed out (called after the commit).
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
            tokens_valid_after: None,
        }
    }

    #[test]
    fn a_row_read_before_a_change_is_not_remembered_after_it() {
        let users = SignedInUsers::new(true);
        let era = users.era();
        // Another request changes and commits user b while this one was reading user a.
        users.forget("b");
        users.remember(user("a", "old"), "t1", era);
        assert!(users.get("a", "t1").is_none());
        users.remember(user("a", "new"), "t1", users.era());
        assert_eq!(users.get("a", "t1").unwrap().name, "new");
        users.forget("a");
        assert!(users.get("a", "t1").is_none());
    }

    #[test]
    fn only_the_tokens_a_row_was_read_for_are_let_through() {
        let users = SignedInUsers::new(true);
        users.remember(user("a", "x"), "t1", users.era());
        assert!(users.get("a", "t1").is_some());
        assert!(users.get("a", "t2").is_none(), "t2 may have been signed out of");
        users.remember(user("a", "x"), "t2", users.era());
        assert!(users.get("a", "t1").is_some() && users.get("a", "t2").is_some());
        for i in 0..TOKENS_PER_USER {
            users.remember(user("a", "x"), &format!("n{i}"), users.era());
        }
        assert!(users.get("a", "t1").is_none(), "the oldest token is read again");
        assert!(users.get("a", "n0").is_some());
    }

    #[test]
    fn nothing_is_remembered_when_disabled() {
        let users = SignedInUsers::new(false);
        users.remember(user("a", "x"), "t1", users.era());
        assert!(users.get("a", "t1").is_none());
    }
}
