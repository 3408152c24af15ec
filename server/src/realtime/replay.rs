//! Catch-up from the event log: replays what a socket missed, then hands it to the live stream.
use std::{sync::Arc, time::Duration};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use socketioxide::{SendError, SocketError, adapter::Adapter, extract::SocketRef};

use super::{Conn, Realtime, rooms};
use crate::{
    domain::{events::visible_to, notifications::Notification},
    entity::{event, notification},
};

const PAGE: u64 = 500;
/// How long a socket may go without reading before it is dropped (it reconnects and resumes).
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Replays events after `from` to `socket`, then lets live emits through. `join` are rooms to
/// enter at the moment replay meets live (a reconnecting client's rooms); without it the
/// socket's current rooms decide what it is owed.
pub fn spawn<A: Adapter>(rt: Realtime, socket: SocketRef<A>, conn: Arc<Conn>, from: i64, join: Option<Vec<String>>) {
    tokio::spawn(async move {
        if let Err(e) = catch_up(&rt, &socket, &conn, from, join).await {
            tracing::debug!(sid = %socket.id, error = %e, "catch-up abandoned; closing socket");
            let _ = socket.disconnect();
        }
    });
}

async fn catch_up<A: Adapter>(rt: &Realtime, socket: &SocketRef<A>, conn: &Conn, mut from: i64, join: Option<Vec<String>>) -> anyhow::Result<()> {
    let rooms = match &join {
        Some(planned) => planned.clone(),
        None => socket.rooms().into_iter().map(|r| r.to_string()).collect(),
    };
    loop {
        let head = *rt.0.head.lock().await;
        from = replay_range(rt, socket, conn, &rooms, from, head).await?;
        // Meet the live stream under the emit lock: nothing can be emitted between the last
        // replayed event and the socket becoming live.
        let guard = rt.0.head.lock().await;
        if *guard == from {
            if let Some(rooms) = &join {
                socket.join(rooms.clone());
            }
            conn.behind.store(false, std::sync::atomic::Ordering::Release);
            socket.leave(super::BEHIND);
            return Ok(());
        }
        drop(guard);
    }
}

/// Sends every event in `(from, to]` the socket is owed; returns `to`.
async fn replay_range<A: Adapter>(rt: &Realtime, socket: &SocketRef<A>, conn: &Conn, rooms: &[String], mut from: i64, to: i64) -> anyhow::Result<i64> {
    while from < to {
        let events = visible_to(
            event::Entity::find()
                .filter(event::Column::Id.gt(from))
                .filter(event::Column::Id.lte(to))
                .order_by_asc(event::Column::Id)
                .limit(PAGE),
            &conn.user_id,
            conn.role,
        )
        .all(&rt.0.db)
        .await?;
        let page_end = match events.last() {
            Some(e) if events.len() as u64 == PAGE => e.id,
            _ => to,
        };
        let notes: Vec<Notification> = notification::Entity::find()
            .filter(notification::Column::UserId.eq(conn.user_id.clone()))
            .filter(notification::Column::EventId.gt(from))
            .filter(notification::Column::EventId.lte(page_end))
            .order_by_asc(notification::Column::EventId)
            .all(&rt.0.db)
            .await?
            .into_iter()
            .map(Notification::from)
            .collect();
        // Notifications can come from events the caller cannot list (e.g. a webhook test), so
        // walk both in event order.
        let mut ids: Vec<i64> = events.iter().map(|e| e.id).chain(notes.iter().map(|n| n.event_id)).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let own: Vec<Notification> = notes.iter().filter(|n| n.event_id == id).cloned().collect();
            let ev = match events.iter().find(|e| e.id == id) {
                Some(e) => e.clone(),
                None => match event::Entity::find_by_id(id).one(&rt.0.db).await? {
                    Some(e) => e,
                    None => continue,
                },
            };
            let visible = events.iter().any(|e| e.id == id);
            for target in rooms::targets(&ev, &own) {
                let is_note = target.event == "notification";
                if (visible || is_note) && target.reaches(rooms) {
                    send_waiting(socket, target.event, &target.payload).await?;
                }
            }
        }
        from = page_end;
    }
    Ok(to)
}

/// Emits, waiting while the socket's buffer is full (a slow reader slows only itself).
async fn send_waiting<A: Adapter>(socket: &SocketRef<A>, event: &'static str, payload: &serde_json::value::RawValue) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match socket.emit(event, payload) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) if started.elapsed() < STALL_LIMIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => anyhow::bail!("cannot send to socket: {e}"),
        }
    }
}
