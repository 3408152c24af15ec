// Small observable stores and the app-wide session / notification state.
import { useEffect, useState } from 'preact/hooks';
import { api, setToken, setUnauthorizedHandler, type Notification, type User } from './api';
import { live, type LiveStatus } from './live';

export class Store<T> {
  private subs = new Set<(v: T) => void>();
  constructor(private value: T) {}
  get(): T {
    return this.value;
  }
  set(v: T) {
    this.value = v;
    this.subs.forEach((fn) => fn(v));
  }
  update(fn: (v: T) => T) {
    this.set(fn(this.value));
  }
  subscribe(fn: (v: T) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
}

export function useStore<T>(store: Store<T>): T {
  const [v, setV] = useState(store.get());
  useEffect(() => {
    setV(store.get());
    return store.subscribe(setV);
  }, [store]);
  return v;
}

export interface Session {
  token: string;
  user: User;
}

const KEY = 'ticketwire.session';

export const session = new Store<Session | null>(null);
export const liveStatus = new Store<LiveStatus>('offline');
live.onStatus((s) => liveStatus.set(s));

export interface Toast {
  id: number;
  text: string;
  href?: string;
}
export const toasts = new Store<Toast[]>([]);
let toastSeq = 0;
/** At most this many toasts at once; older ones make way. */
export const MAX_TOASTS = 3;
export function toast(text: string, href?: string) {
  const id = ++toastSeq;
  toasts.update((t) => [...t.slice(-(MAX_TOASTS - 1)), { id, text, href }]);
  setTimeout(() => dismissToast(id), 6000);
}
export function dismissToast(id: number) {
  toasts.update((t) => t.filter((x) => x.id !== id));
}

export const unreadCount = new Store<number>(0);
/** The server counts unread notifications up to a cap; past it the count is a lower bound. */
export const unreadMore = new Store<boolean>(false);
export const notifications = new Store<Notification[]>([]);

/** The ticket on screen, if any: its notifications are read as they come, without a toast. */
export const ticketOnScreen = new Store<string | null>(null);

live.on('notification', (p) => {
  const n: Notification | undefined = p?.notification;
  if (!n) return;
  if (notifications.get().some((x) => x.id === n.id)) return;
  notifications.update((list) => [n, ...list].slice(0, 100));
  if (n.read) return;
  unreadCount.update((c) => c + 1);
  if (n.ticket_id && n.ticket_id === ticketOnScreen.get() && document.visibilityState !== 'hidden') {
    void markRead(n).catch(() => {});
    return;
  }
  toast(n.message, n.ticket_id ? `/tickets/${n.ticket_id}` : undefined);
});

/** Marks read every unread notification about `ticketId` (it is on screen). */
export async function markTicketRead(ticketId: string) {
  const unread = notifications.get().filter((n) => !n.read && n.ticket_id === ticketId);
  await Promise.all(unread.map((n) => markRead(n).catch(() => {})));
}
live.onResync(() => {
  void refreshNotifications();
});

export async function refreshNotifications() {
  try {
    const [count, page] = await Promise.all([api.unreadCount(), api.notifications()]);
    unreadCount.set(count.count);
    unreadMore.set(!!count.more);
    notifications.set(page.items);
  } catch {
    /* shown elsewhere */
  }
}

export async function markRead(n: Notification) {
  if (n.read) return;
  // Read at once on screen; the server confirms.
  n.read = true;
  const updated = await api.markRead(n.id);
  notifications.update((list) => list.map((x) => (x.id === n.id ? { ...x, ...updated, read: true } : x)));
  unreadCount.update((c) => Math.max(0, c - 1));
}

export async function markAllRead() {
  await api.markAllRead();
  notifications.update((list) => list.map((x) => ({ ...x, read: true })));
  unreadCount.set(0);
  unreadMore.set(false);
}

function begin(s: Session) {
  setToken(s.token);
  session.set(s);
  live.start(s.token, s.user.role);
  void refreshNotifications();
}

export function signIn(token: string, user: User) {
  const s = { token, user };
  try {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    /* storage off */
  }
  begin(s);
}

export function signOut() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* storage off */
  }
  live.stop();
  setToken(null);
  session.set(null);
  notifications.set([]);
  unreadCount.set(0);
  unreadMore.set(false);
}

/** Restores a session kept in this tab and re-reads the user (its role may have changed). */
export async function restoreSession() {
  let saved: Session | null = null;
  try {
    const raw = sessionStorage.getItem(KEY);
    saved = raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    saved = null;
  }
  if (!saved?.token) return;
  setToken(saved.token);
  try {
    const user = await api.me();
    signIn(saved.token, user);
  } catch {
    signOut();
  }
}

setUnauthorizedHandler(() => {
  signOut();
  toast('Your session ended. Please sign in again.');
});
live.onUnauthorized = () => {
  signOut();
  toast('Your session ended. Please sign in again.');
};

export const isStaff = (u: User | undefined | null) => u?.role === 'admin' || u?.role === 'agent';
