//! A local socket of either adapter, behind one trait, so the hub is written once.
use std::sync::Arc;

use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Adapter, extract::SocketRef, socket::Sid};

use crate::realtime::Conn;

/// A local socket of either adapter, as the hub uses it.
pub(super) trait Target: Send + Sync {
    fn sid(&self) -> Sid;
    /// False from the moment it starts closing: nothing is kept for it after that.
    fn connected(&self) -> bool;
    fn conn(&self) -> Option<Arc<Conn>>;
    fn send(&self, event: &str, payload: &RawValue) -> bool;
    fn in_room(&self, room: &str) -> bool;
}

impl<A: Adapter> Target for SocketRef<A> {
    fn sid(&self) -> Sid {
        self.id
    }
    fn connected(&self) -> bool {
        socketioxide::socket::Socket::connected(self)
    }
    fn conn(&self) -> Option<Arc<Conn>> {
        self.extensions.get::<Arc<Conn>>()
    }
    fn send(&self, event: &str, payload: &RawValue) -> bool {
        self.emit(event, payload).is_ok()
    }
    fn in_room(&self, room: &str) -> bool {
        self.rooms().iter().any(|r| r == room)
    }
}

pub(super) fn local_sockets<A: Adapter>(io: &SocketIo<A>, room: &str) -> Vec<Box<dyn Target>> {
    io.to(room.to_string()).sockets().into_iter().map(|s| Box::new(s) as Box<dyn Target>).collect()
}

pub(super) fn ticket_of_room(room: &str) -> Option<&str> {
    room.strip_prefix("ticket:")
}
