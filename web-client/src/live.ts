// The one Socket.IO connection: JWT auth, rooms, dedupe, catch-up on reconnect, status.
import { io, type Socket } from 'socket.io-client';
import { EventDeduper } from './merge';
import type { Role } from './api';

export type LiveStatus = 'offline' | 'connecting' | 'online' | 'reconnecting';

export const LIVE_EVENTS = ['ticket.update', 'comment.update', 'kb.update', 'user.update', 'attachment.update', 'notification', 'webhook'] as const;
export type LiveEventName = (typeof LIVE_EVENTS)[number];
/** Events that the server replays from its log on reconnect (so they move the resume point). */
const REPLAYED = new Set<string>(['ticket.update', 'comment.update', 'kb.update', 'user.update', 'attachment.update', 'notification']);

type Listener = (payload: any) => void;

export function baseRooms(role: Role): string[] {
  const rooms = ['kb'];
  if (role === 'admin' || role === 'agent') rooms.push('tickets', 'comments', 'attachments');
  if (role === 'admin') rooms.push('users');
  return rooms;
}

class Live {
  private socket: Socket | null = null;
  private listeners = new Map<string, Set<Listener>>();
  private statusListeners = new Set<(s: LiveStatus) => void>();
  private resyncListeners = new Set<() => void>();
  private rooms = new Map<string, number>();
  /** The rooms the last handshake asked for. */
  private handshakeRooms = new Set<string>();
  /** Joins asked for while connecting, answered once the connection has the room. */
  private joining = new Map<string, (() => void)[]>();
  private base: string[] = [];
  private token = '';
  private everConnected = false;
  private canResume = false;
  deduper = new EventDeduper();
  status: LiveStatus = 'offline';
  onUnauthorized: (() => void) | null = null;

  start(token: string, role: Role) {
    this.stop();
    this.token = token;
    this.base = baseRooms(role);
    this.deduper = new EventDeduper();
    this.everConnected = false;
    const socket = io({
      path: '/socket.io/',
      transports: ['websocket'],
      reconnectionDelay: 300,
      reconnectionDelayMax: 2000,
      randomizationFactor: 0.3,
      timeout: 5000,
      auth: (cb) => {
        const last = this.deduper.lastEventId;
        this.canResume = last !== null;
        this.handshakeRooms = new Set(this.allRooms());
        const auth: Record<string, unknown> = { token: this.token, rooms: [...this.handshakeRooms] };
        if (last !== null) {
          auth.last_event_id = last;
          // Resumes inside that event if the connection dropped between two of its emits.
          if (this.deduper.lastEventName) auth.last_event = this.deduper.lastEventName;
        }
        cb(auth);
      },
    });
    this.socket = socket;
    // Listeners of the status (presence) bind to this socket before its first `connect`.
    this.setStatus('connecting');
    socket.on('connect', () => {
      const reconnect = this.everConnected;
      this.everConnected = true;
      // A room joined after the handshake was sent, before it was answered, is in neither.
      for (const room of this.rooms.keys()) {
        if (this.handshakeRooms.has(room)) this.joined(room);
        else socket.emit('join', { room }, () => this.joined(room));
      }
      this.setStatus('online');
      // Without a resume point the server cannot replay: let views reload what they show.
      if (reconnect && !this.canResume) this.resyncListeners.forEach((fn) => fn());
    });
    socket.on('disconnect', (reason) => {
      if (this.socket !== socket) return;
      this.setStatus('reconnecting');
      // The server closed us on purpose (token expiry, role change, catch-up abandoned):
      // socket.io does not retry that by itself.
      if (reason === 'io server disconnect') setTimeout(() => this.socket === socket && socket.connect(), 300);
    });
    socket.on('connect_error', (err) => {
      if (this.socket !== socket) return;
      if (err?.message === 'unauthorized') {
        this.setStatus('offline');
        this.onUnauthorized?.();
        return;
      }
      this.setStatus('reconnecting');
      if (!socket.active) setTimeout(() => this.socket === socket && socket.connect(), 1000);
    });
    // After a reconnect with last_event_id: either everything missed was replayed, or the server
    // was too far ahead to replay it and this socket is live from `position`: views reload.
    socket.on('catch_up', (p: { recovered?: boolean; position?: number }) => {
      if (this.socket !== socket) return;
      const d = this.deduper;
      if (typeof p?.position === 'number' && (d.lastEventId === null || p.position > d.lastEventId)) {
        d.lastEventId = p.position;
        d.lastEventName = null;
      }
      if (p?.recovered === false) this.resyncListeners.forEach((fn) => fn());
    });
    socket.io.on('reconnect_attempt', () => this.socket === socket && this.setStatus('reconnecting'));
    for (const name of LIVE_EVENTS) {
      socket.on(name, (payload: any) => this.dispatch(name, payload));
    }
  }

  stop() {
    if (this.socket) {
      const s = this.socket;
      this.socket = null;
      s.removeAllListeners();
      s.io.removeAllListeners();
      s.disconnect();
    }
    this.rooms.clear();
    this.setStatus('offline');
  }

  private allRooms(): string[] {
    return [...this.base, ...this.rooms.keys()];
  }

  /** Hands one incoming event to listeners, once. Exposed for tests. */
  dispatch(name: string, payload: any) {
    const id = payload && typeof payload.event_id === 'number' ? payload.event_id : null;
    if (REPLAYED.has(name)) {
      if (!this.deduper.accept(name, id)) return;
    } else if (id !== null && !this.webhookSeen(id, payload)) return;
    this.listeners.get(name)?.forEach((fn) => {
      try {
        fn(payload);
      } catch (e) {
        console.warn('listener failed', e);
      }
    });
  }

  private webhookIds = new Set<string>();
  private webhookSeen(id: number, payload: any): boolean {
    const key = `${id}:${payload?.delivery_id ?? payload?.notification?.id ?? ''}`;
    if (this.webhookIds.has(key)) return false;
    this.webhookIds.add(key);
    return true;
  }

  on(name: LiveEventName, fn: Listener): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  onStatus(fn: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** Called after a reconnect that could not resume (views should reload). */
  onResync(fn: () => void): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  private setStatus(s: LiveStatus) {
    if (this.status === s) return;
    this.status = s;
    this.statusListeners.forEach((fn) => fn(s));
  }

  /** Joins a room (counted); resolves once the server acknowledged, or at once when offline. */
  join(room: string): Promise<boolean> {
    const n = this.rooms.get(room) ?? 0;
    this.rooms.set(room, n + 1);
    const s = this.socket;
    if (n > 0 || !s) return Promise.resolve(true);
    if (!s.connected) {
      // Entered when the connection is made: resolves then, so a read after it misses nothing.
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        const waiting = this.joining.get(room) ?? [];
        waiting.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
        this.joining.set(room, waiting);
      });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      s.emit('join', { room }, (ack: { ok: boolean; error?: string }) => {
        clearTimeout(timer);
        resolve(!!ack?.ok);
      });
    });
  }

  private joined(room: string) {
    const waiting = this.joining.get(room);
    this.joining.delete(room);
    waiting?.forEach((done) => done());
  }

  leave(room: string) {
    const n = this.rooms.get(room) ?? 0;
    if (n <= 1) {
      this.rooms.delete(room);
      if (this.socket?.connected && !this.base.includes(room)) this.socket.emit('leave', { room }, () => {});
    } else this.rooms.set(room, n - 1);
  }
}

export const live = new Live();
