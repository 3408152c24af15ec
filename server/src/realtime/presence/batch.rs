//! The batch: every few hundred milliseconds, what expired is dropped and each changed ticket's
//! people and typing go to this node's sockets, as a snapshot or as the difference from what
//! each audience was last sent.
use std::{
    cell::OnceCell,
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Adapter};

use super::{
    Hub, Requester, SocketState, State, TicketState, Who, audience_of, relay,
    target::{Target, local_sockets},
    view::{self, Diff, View, slot},
};
use crate::{
    policy::presence::Audience,
    realtime::{Io, rooms},
};

/// Sends `s` the snapshot of `view` unless it is empty: a client that has just entered a ticket's
/// room starts from nobody, so an empty snapshot would say nothing (and every join of a quiet
/// ticket would cost a message). True when the socket now knows the view.
pub(super) fn snapshot_to<P: std::ops::Deref<Target = RawValue>>(
    s: &dyn Target,
    view: &View,
    make: impl FnOnce() -> P,
) -> bool {
    view.is_empty() || s.send("presence.snapshot", &make())
}

/// Sends a staff socket of the ticket list the staff view of every ticket someone is on, unless
/// nobody is on any. True when the socket now knows them.
pub(super) fn list_to(s: &dyn Target, tickets: &HashMap<Arc<str>, TicketState>) -> bool {
    let staff = slot(Audience::Staff);
    if tickets.values().all(|t| t.sent[staff].people.is_empty()) {
        return true;
    }
    s.send("presence.list", &view::list(tickets.iter().map(|(id, t)| (id, &t.sent[staff]))))
}

/// A payload made once per batch, when the first socket needs it, shared by all that do.
fn cached(cell: &OnceCell<Arc<RawValue>>, make: impl FnOnce() -> Box<RawValue>) -> Arc<RawValue> {
    cell.get_or_init(|| Arc::from(make())).clone()
}

/// Sockets sent to between two yields to the runtime.
const SOCKETS_PER_SLICE: usize = 64;

/// One socket's message of a batch (one per ticket it is shown), sent once the state's lock is
/// released.
pub(super) struct Outbound {
    target: Box<dyn Target>,
    event: &'static str,
    payload: Arc<RawValue>,
    /// What it is marked as knowing, to forget if it cannot take the message.
    undo: Undo,
}

#[derive(Clone)]
enum Undo {
    Ticket(Arc<str>, Audience),
    List,
}

impl Hub {
    /// One batch: drops what expired, works out each changed ticket's messages for this node's
    /// sockets (for `deliver`), and returns this node's changes for the others.
    pub(super) fn flush(self: &Arc<Self>) -> (Vec<relay::Batch>, Vec<Outbound>) {
        let now = Instant::now();
        let mut st = self.lock();
        self.expire(&mut st, now);
        let outbound = match &self.io {
            Io::Local(io) => self.plan_sends(io, &mut st, now),
            Io::Redis(io) => self.plan_sends(io, &mut st, now),
        };
        metrics::gauge!("ticketwire_presence_entries")
            .set(st.tickets.values().map(|t| t.entries.len()).sum::<usize>() as f64);
        let batches = if self.relay.is_some() {
            self.outgoing(&mut st, now)
        } else {
            st.unpublished.clear();
            Vec::new()
        };
        // How long every presence message and event waited for the hub, at most, this batch.
        metrics::histogram!("ticketwire_presence_batch_lock_seconds").record(now.elapsed().as_secs_f64());
        (batches, outbound)
    }

    pub(super) fn expire(&self, st: &mut State, now: Instant) {
        let State { tickets, sockets, dirty, unpublished, .. } = st;
        for (tid, t) in tickets.iter_mut() {
            let before = t.entries.len();
            t.entries.retain(|(_, conn), e| {
                if e.expires > now {
                    return true;
                }
                if let Who::Local(_, sid) = e.who {
                    if let Some(socket) = sockets.get_mut(&sid) {
                        socket.tickets.remove(tid);
                    }
                    unpublished.insert((tid.clone(), conn.clone()));
                }
                false
            });
            let mut changed = t.entries.len() != before;
            for e in t.entries.values_mut() {
                for slot in e.typing.iter_mut() {
                    if slot.is_some_and(|at| at <= now) {
                        *slot = None;
                        changed = true;
                    }
                }
            }
            if changed {
                dirty.insert(tid.clone());
            }
        }
    }

    /// Works out, under the lock, what each of this node's sockets is to be sent for the changed
    /// tickets; the sending itself is `deliver`'s, after the lock is released. A socket is marked
    /// as knowing what it is about to be sent; `deliver` undoes that for a socket that could not
    /// take it, so its next change brings a whole snapshot (or list) instead.
    pub(super) fn plan_sends<A: Adapter>(
        self: &Arc<Self>,
        io: &SocketIo<A>,
        st: &mut State,
        now: Instant,
    ) -> Vec<Outbound> {
        let dirty: Vec<Arc<str>> = st.dirty.drain().collect();
        let mut out = Vec::new();
        let mut wants_list = Vec::new();
        let State { tickets, sockets, .. } = st;
        for tid in dirty {
            let Some(t) = tickets.get_mut(&tid) else { continue };
            let views =
                [Audience::Staff, Audience::Customer].map(|a| View::of(a, t.entries.values().map(|e| e.part(now))));
            let diffs = [0, 1].map(|i| Diff::between(&t.sent[i], &views[i]));
            // [snapshot, presence.update] per audience, made when first needed.
            let payloads: [[OnceCell<Arc<RawValue>>; 2]; 2] = Default::default();
            let list_update = OnceCell::new();
            let subject = t.requester.subject();
            let mut done = HashSet::new();
            for s in local_sockets(io, &rooms::ticket(&tid)) {
                let (Some(conn), true) = (s.conn(), s.connected()) else { continue };
                let sid = s.sid();
                done.insert(sid);
                let audience = audience_of(&conn, subject.as_ref());
                if audience.is_none() && t.requester == Requester::Unknown {
                    t.requester = Requester::Loading;
                    self.load_requester(tid.clone());
                }
                let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                let Some(audience) = audience else {
                    socket.seen.remove(&tid);
                    continue;
                };
                let (i, p) = (slot(audience), &payloads[slot(audience)]);
                let message = if socket.seen.get(&tid) == Some(&audience) {
                    (!diffs[i].is_empty())
                        .then(|| ("presence.update", cached(&p[1], || view::update(&tid, &diffs[i], &views[i]))))
                } else {
                    (!views[i].is_empty())
                        .then(|| ("presence.snapshot", cached(&p[0], || view::snapshot(&tid, &views[i]))))
                };
                socket.seen.insert(tid.clone(), audience);
                if let Some((event, payload)) = message {
                    out.push(Outbound { target: s, event, payload, undo: Undo::Ticket(tid.clone(), audience) });
                }
            }
            if diffs[0].people_changed() {
                for s in local_sockets(io, "tickets") {
                    let sid = s.sid();
                    if done.contains(&sid) || !s.connected() || !s.conn().is_some_and(|c| c.role().is_staff()) {
                        continue;
                    }
                    let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                    if socket.list_seen {
                        let payload = cached(&list_update, || view::list_update(&tid, &diffs[0]));
                        out.push(Outbound { target: s, event: "presence.update", payload, undo: Undo::List });
                    } else {
                        wants_list.push(s);
                    }
                }
            }
            drop(diffs);
            t.sent = views;
            if t.entries.is_empty() && t.sent.iter().all(View::is_empty) {
                tickets.remove(&tid);
            }
        }
        // After every ticket's changes, so the list already holds them; one payload for all.
        let staff = slot(Audience::Staff);
        let list = (!tickets.values().all(|t| t.sent[staff].people.is_empty()))
            .then(|| Arc::<RawValue>::from(view::list(tickets.iter().map(|(id, t)| (id, &t.sent[staff])))));
        for s in wants_list {
            if let Some(socket) = sockets.get_mut(&s.sid()) {
                socket.list_seen = true;
                if let Some(list) = &list {
                    let payload = list.clone();
                    out.push(Outbound { target: s, event: "presence.list", payload, undo: Undo::List });
                }
            }
        }
        out
    }

    /// Sends a batch's messages, a slice of sockets at a time, each slice once live traffic has
    /// passed (`PresenceConfig::give_way_ms`), so that a ticket's change and its fan-out are not
    /// held behind a whole batch; then, for each socket that could not take its message, forgets
    /// that it knows what the message said.
    pub(super) async fn deliver(&self, outbound: Vec<Outbound>) {
        let mut refused = Vec::new();
        let give_way = Duration::from_millis(self.config.give_way_ms);
        // Bounded, so that a node that never stops emitting still sends presence in time.
        let deadline = Instant::now() + Duration::from_millis(self.config.batch_ms / 2);
        for slice in outbound.chunks(SOCKETS_PER_SLICE) {
            while !give_way.is_zero() {
                let (ahead, left) = (self.traffic_ahead(give_way), deadline.saturating_duration_since(Instant::now()));
                if ahead.is_zero() || left.is_zero() {
                    break;
                }
                tokio::time::sleep(ahead.min(left)).await;
            }
            for o in slice {
                if !o.target.send(o.event, &o.payload) {
                    refused.push((o.target.sid(), o.undo.clone()));
                }
            }
            tokio::task::yield_now().await;
        }
        if refused.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (sid, undo) in refused {
            let Some(socket) = st.sockets.get_mut(&sid) else { continue };
            match undo {
                Undo::Ticket(tid, audience) => {
                    if socket.seen.get(&tid) == Some(&audience) {
                        socket.seen.remove(&tid);
                    }
                }
                Undo::List => socket.list_seen = false,
            }
        }
    }

    /// This node's entries that changed, as they are now (or ended), in messages of bounded size.
    pub(super) fn outgoing(&self, st: &mut State, now: Instant) -> Vec<relay::Batch> {
        let mut wanted: Vec<(Arc<str>, Arc<str>)> = st.unpublished.drain().collect();
        if std::mem::take(&mut st.republish_all) {
            for (tid, t) in &st.tickets {
                for (node, conn) in t.entries.keys() {
                    if *node == self.node {
                        wanted.push((tid.clone(), conn.clone()));
                    }
                }
            }
        }
        let left = |at: Instant| at.saturating_duration_since(now).as_millis() as u64;
        let mut batches: Vec<relay::Batch> = Vec::new();
        for (tid, conn) in wanted {
            if batches.last().is_none_or(|b| b.up.len() + b.rm.len() >= relay::MAX_PER_MESSAGE) {
                batches.push(relay::Batch { node: self.node.to_string(), ..Default::default() });
            }
            let batch = batches.last_mut().expect("pushed above");
            let entry = st.tickets.get(&tid).and_then(|t| t.entries.get(&(self.node.clone(), conn.clone())));
            match entry {
                Some(e) => batch.up.push(relay::Up {
                    c: conn.to_string(),
                    t: tid.to_string(),
                    u: e.user_id.to_string(),
                    n: e.name.to_string(),
                    r: e.role().as_str().into(),
                    s: e.activity.as_str().into(),
                    ttl: left(e.expires),
                    ty: e.typing.map(|t| t.map_or(0, left)),
                }),
                None => batch.rm.push(relay::Rm { c: conn.to_string(), t: tid.to_string() }),
            }
        }
        batches
    }
}
