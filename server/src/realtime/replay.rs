//! Catch-up from the event log: replays what a socket missed, then hands it to the live stream.
use std::{sync::Arc, time::Duration};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use socketioxide::{SendError, SocketError, adapter::Adapter, extract::SocketRef};

use super::{
    Conn, Realtime,
    emits::{self, Emit},
};
use crate::{
    config::CatchUpConfig,
    domain::{events::visible_to, notifications::Notification},
    entity::{event, notification},
    policy::Present,
    retention,
};

const PAGE: u64 = 500;

/// Where a socket's stream resumes. One event can reach a socket as several emits (say
/// `ticket.update`, then its `notification`), so a position is an event id and, optionally, the
/// last emit of that event the socket got: a client that dropped between the two resumes with
/// the second, not after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeAt {
    pub event_id: i64,
    /// The name of the last emit of `event_id` already received; `None`: all of them were.
    pub within: Option<String>,
}

impl ResumeAt {
    /// Everything up to and including `event_id` was received.
    pub fn after(event_id: i64) -> Self {
        Self { event_id, within: None }
    }

    /// The event before the first one still owed.
    fn first_owed(&self) -> i64 {
        if self.within.is_some() { self.event_id - 1 } else { self.event_id }
    }
}
/// How long a socket may go without reading before it is dropped (it reconnects and resumes).
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Replays events after `from` to `socket`, then lets live emits through. `join` are rooms to
/// enter at the moment replay meets live (a reconnecting client's rooms); without it the
/// socket's current rooms decide what it is owed.
pub fn spawn<A: Adapter>(
    rt: Realtime,
    socket: SocketRef<A>,
    conn: Arc<Conn>,
    from: ResumeAt,
    join: Option<Vec<String>>,
) {
    tokio::spawn(async move {
        if let Err(e) = catch_up(&rt, &socket, &conn, from, join, false).await {
            tracing::debug!(sid = %socket.id, error = %e, "catch-up abandoned; closing socket");
            let _ = socket.disconnect();
        }
    });
}

/// The emit that tells a reconnecting client how its catch-up ended, sent before any live emit.
pub const CATCH_UP: &str = "catch_up";

/// Catches up a client that connected with `last_event_id`, then joins it to `rooms`. Within the
/// window it is replayed everything it missed and told `catch_up {recovered: true, position}`;
/// past it (too many events of the log, too old a first one, or pruned) it is replayed nothing
/// and told `catch_up {recovered: false, position}`: it is live from `position` on and reloads
/// what it shows.
pub fn spawn_reconnect<A: Adapter>(
    rt: Realtime,
    socket: SocketRef<A>,
    conn: Arc<Conn>,
    from: ResumeAt,
    rooms: Vec<String>,
    window: CatchUpConfig,
) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let head = *rt.0.head.lock().await;
        let entering = rooms.clone();
        let caught_up = match beyond_window(&rt.0.db, from.first_owed(), head, &window).await {
            Ok(false) => catch_up(&rt, &socket, &conn, from, Some(rooms), true).await,
            Ok(true) => {
                metrics::counter!("ticketwire_socket_catch_ups_unrecovered_total").increment(1);
                live_from_now(&rt, &socket, &conn, rooms).await
            }
            Err(e) => Err(e),
        };
        match caught_up {
            Ok(()) => {
                metrics::histogram!("ticketwire_socket_catch_up_seconds").record(started.elapsed().as_secs_f64());
                // Its rooms were entered only now: so is the presence on the tickets among them.
                if let Some(presence) = rt.presence() {
                    presence.entered(&socket, &entering).await;
                }
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, error = %e, "catch-up abandoned; closing socket");
                let _ = socket.disconnect();
            }
        }
    });
}

/// Whether replaying what came after `seen` (up to `head`) would walk more of the log than a
/// catch-up may, or start at an event older than it may, or cross a part of the log that
/// retention may have removed. Three reads of the log's primary key, however long the log.
async fn beyond_window(
    db: &impl ConnectionTrait,
    seen: i64,
    head: i64,
    window: &CatchUpConfig,
) -> anyhow::Result<bool> {
    if seen < retention::pruned_through(db).await? {
        return Ok(true);
    }
    let owed = || {
        event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::Id.gt(seen))
            .filter(event::Column::Id.lte(head))
            .order_by_asc(event::Column::Id)
    };
    let past_the_count: Option<i64> = owed().offset(window.max_events).limit(1).into_tuple().one(db).await?;
    if past_the_count.is_some() {
        return Ok(true);
    }
    let first: Option<chrono::DateTime<chrono::Utc>> =
        owed().select_only().column(event::Column::CreatedAt).limit(1).into_tuple().one(db).await?;
    let oldest_allowed =
        chrono::Utc::now() - chrono::Duration::seconds(window.max_age_secs.min(i64::MAX as u64) as i64);
    Ok(first.is_some_and(|at| at < oldest_allowed))
}

/// Makes a socket that cannot be caught up live from the current position: it joins its rooms
/// and learns the position under the emit lock, so the live stream takes over exactly there.
async fn live_from_now<A: Adapter>(
    rt: &Realtime,
    socket: &SocketRef<A>,
    conn: &Conn,
    rooms: Vec<String>,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let guard = rt.0.head.lock().await;
        if announce(socket, false, *guard, started)? {
            socket.join(rooms);
            conn.behind.store(false, std::sync::atomic::Ordering::Release);
            socket.leave(super::BEHIND);
            return Ok(());
        }
        drop(guard);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `catch_up {recovered, position}`; false when the socket's buffer is full (call again
/// once it drained, without the emit lock), an error once it stayed full too long.
fn announce<A: Adapter>(
    socket: &SocketRef<A>,
    recovered: bool,
    position: i64,
    started: tokio::time::Instant,
) -> anyhow::Result<bool> {
    let note = serde_json::json!({ "recovered": recovered, "position": position });
    match socket.emit(CATCH_UP, &note) {
        Ok(()) => Ok(true),
        Err(SendError::Socket(SocketError::InternalChannelFull)) if started.elapsed() < STALL_LIMIT => Ok(false),
        Err(e) => anyhow::bail!("cannot send to socket: {e}"),
    }
}

/// `report`: tell the client `catch_up {recovered: true}` as it meets the live stream.
async fn catch_up<A: Adapter>(
    rt: &Realtime,
    socket: &SocketRef<A>,
    conn: &Conn,
    mut from: ResumeAt,
    join: Option<Vec<String>>,
    report: bool,
) -> anyhow::Result<()> {
    let rooms = match &join {
        Some(planned) => planned.clone(),
        None => socket.rooms().into_iter().map(|r| r.to_string()).collect(),
    };
    let mut meeting = None;
    loop {
        let head = *rt.0.head.lock().await;
        from = ResumeAt::after(replay_range(rt, socket, conn, &rooms, &from, head).await?);
        // Meet the live stream under the emit lock: nothing can be emitted between the last
        // replayed event and the socket becoming live.
        let guard = rt.0.head.lock().await;
        if *guard == from.event_id {
            if report && !announce(socket, true, *guard, *meeting.get_or_insert_with(tokio::time::Instant::now))? {
                // The replay filled the socket's buffer: let it drain, not under the lock.
                drop(guard);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
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

/// Sends every emit after `resume`, up to event `to`, the socket is owed; returns `to`. What it
/// is owed is the policy's answer for the viewer and each entity as it is now: an event of
/// something it can no longer read comes as a redaction, or not at all.
async fn replay_range<A: Adapter>(
    rt: &Realtime,
    socket: &SocketRef<A>,
    conn: &Conn,
    rooms: &[String],
    resume: &ResumeAt,
    to: i64,
) -> anyhow::Result<i64> {
    let mut from = resume.first_owed();
    while from < to {
        let viewer = conn.viewer();
        let query = event::Entity::find()
            .filter(event::Column::Id.gt(from))
            .filter(event::Column::Id.lte(to))
            .order_by_asc(event::Column::Id)
            .limit(PAGE);
        let mut events = visible_to(query, &conn.user_id, viewer.role).all(&rt.0.db).await?;
        // Retention never reaches a catch-up inside the window, but one that took hours could
        // fall out of it: then the log after `from` may have gaps, and a reconnect says so.
        if retention::pruned_through(&rt.0.db).await? > from {
            anyhow::bail!("the event log was pruned past this socket's position");
        }
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
        // Notifications can come from events the cheap filter leaves out (an agent told of a
        // user event, say): read those too, and walk both in event order.
        let missing: Vec<i64> =
            notes.iter().map(|n| n.event_id).filter(|id| !events.iter().any(|e| e.id == *id)).collect();
        if !missing.is_empty() {
            events.extend(event::Entity::find().filter(event::Column::Id.is_in(missing)).all(&rt.0.db).await?);
            events.sort_by_key(|e| e.id);
            events.dedup_by_key(|e| e.id);
        }
        let present = Present::load(&rt.0.db, &events).await?;
        for ev in &events {
            let access = present.access(&viewer, ev);
            let own: Vec<Notification> = notes.iter().filter(|n| n.event_id == ev.id).cloned().collect();
            let owed: Vec<Emit> = emits::for_event(ev, &own)
                .into_iter()
                .filter(|e| e.reaches(rooms) && e.payload_for(&viewer, access).is_some())
                .collect();
            for emit in owed_after(owed, resume, ev.id) {
                if let Some(payload) = emit.payload_for(&viewer, access) {
                    send_waiting(socket, emit.event, payload).await?;
                }
            }
        }
        from = page_end;
    }
    Ok(to)
}

/// The emits of event `id` still owed after `resume`. An emit name the socket would not have got
/// (a client's guess, or rooms that changed) resumes at the event's start: better twice than never.
fn owed_after(owed: Vec<Emit>, resume: &ResumeAt, id: i64) -> Vec<Emit> {
    let seen = match &resume.within {
        Some(name) if id == resume.event_id => owed.iter().position(|t| t.event == name.as_str()),
        _ => None,
    };
    match seen {
        Some(last) => owed.into_iter().skip(last + 1).collect(),
        None => owed,
    }
}

/// Emits, waiting while the socket's buffer is full (a slow reader slows only itself).
async fn send_waiting<A: Adapter>(
    socket: &SocketRef<A>,
    event: &'static str,
    payload: &serde_json::value::RawValue,
) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(names: &[&'static str]) -> Vec<Emit> {
        names.iter().map(|&event| Emit::for_test(event, vec!["user:u".into()])).collect()
    }

    fn names(targets: Vec<Emit>) -> Vec<&'static str> {
        targets.into_iter().map(|t| t.event).collect()
    }

    #[test]
    fn resumes_after_the_named_emit_of_that_event_only() {
        let within = |name: &str| ResumeAt { event_id: 7, within: Some(name.into()) };
        let both = || owed(&["ticket.update", "notification"]);
        assert_eq!(names(owed_after(both(), &within("ticket.update"), 7)), ["notification"]);
        assert!(owed_after(both(), &within("notification"), 7).is_empty());
        // Unknown name: the whole event again rather than a gap.
        assert_eq!(names(owed_after(both(), &within("kb.update"), 7)), ["ticket.update", "notification"]);
        // Later events are owed whole.
        assert_eq!(names(owed_after(both(), &within("ticket.update"), 8)), ["ticket.update", "notification"]);
        assert_eq!(names(owed_after(both(), &ResumeAt::after(6), 7)), ["ticket.update", "notification"]);
    }

    #[test]
    fn a_position_inside_an_event_starts_the_log_read_before_it() {
        assert_eq!(ResumeAt { event_id: 7, within: Some("notification".into()) }.first_owed(), 6);
        assert_eq!(ResumeAt::after(7).first_owed(), 7);
    }
}
