// HTTP access to the ticketwire API: JSON in and out, bearer token, `{code, detail}` errors.

export type Role = 'admin' | 'agent' | 'customer';

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  is_active: boolean;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Ticket {
  id: string;
  number: number;
  subject: string;
  description: string;
  status: string;
  priority: string;
  category: string;
  tags: string[];
  source: string;
  external_id: string | null;
  requester_id: string | null;
  requester_email: string | null;
  requester_name?: string | null;
  assignee_id: string | null;
  metadata: unknown;
  classification: string | null;
  created_at: string;
  updated_at: string;
  resolved_at: string | null;
  version: number;
}

export interface Comment {
  id: string;
  ticket_id: string;
  author_id: string;
  parent_id: string | null;
  content: string;
  internal: boolean;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Attachment {
  id: string;
  ticket_id: string;
  uploader_id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Article {
  id: string;
  title: string;
  body: string;
  category: string;
  tags: string[];
  status: string;
  author_id: string;
  published_at: string | null;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Notification {
  id: string;
  user_id: string;
  kind: string;
  message: string;
  related_id: string;
  related_type: string;
  ticket_id: string | null;
  actor_id: string | null;
  read: boolean;
  created_at: string;
  event_id: number;
}

export interface Endpoint {
  webhook_url: string;
  secret: string;
  previous_secret?: string | null;
  enabled: boolean;
  disabled_reason?: string | null;
  max_per_second?: number | null;
  created_at: string;
  updated_at: string;
}

export interface Attempt {
  attempted_at: string;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  response_body?: string | null;
}

export interface Delivery {
  id: string;
  event_id: number;
  notification_id: string;
  status: string;
  attempt_count: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  payload?: unknown;
  attempts?: Attempt[] | null;
}

/** Someone staff can look up: admins get the whole account, agents these fields. */
export interface Person {
  id: string;
  name: string;
  email: string;
  role: Role;
  is_active: boolean;
}

export interface FieldChange {
  field: string;
  from: string | null;
  to: string | null;
  from_name: string | null;
  to_name: string | null;
}

export interface TimelineEntry {
  event_id: number;
  at: string;
  action: string;
  actor_id: string | null;
  actor_name: string | null;
  changes: FieldChange[];
}

export interface CannedReply {
  id: string;
  title: string;
  body: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Preferences {
  new_unassigned_tickets: boolean;
  updated_at: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
    /** The whole error body (`missed` and `position` for `new_activity`). */
    public body: any = null,
  ) {
    super(detail || code || `HTTP ${status}`);
  }
}

let token: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setToken(t: string | null) {
  token = t;
}
export function getToken() {
  return token;
}
export function setUnauthorizedHandler(fn: () => void) {
  onUnauthorized = fn;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json', ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let detail = res.statusText;
  let body: any = null;
  try {
    body = await res.json();
    code = body.code ?? code;
    detail = body.detail ?? detail;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, detail, body);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  ifMatch?: number;
  raw?: BodyInit;
  contentType?: string;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const extra: Record<string, string> = {};
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    if (opts.contentType) extra['Content-Type'] = opts.contentType;
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    extra['Content-Type'] = 'application/json';
  }
  if (opts.ifMatch !== undefined) extra['If-Match'] = String(opts.ifMatch);
  const res = await fetch(path, { method: opts.method ?? 'GET', headers: headers(extra), body });
  if (res.status === 401 && token && !path.startsWith('/api/auth/')) onUnauthorized?.();
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const api = {
  login: (email: string, password: string) => request<TokenResponse>('/api/auth/login', { method: 'POST', body: { email, password } }),
  register: (email: string, password: string, name: string) =>
    request<TokenResponse>('/api/auth/register', { method: 'POST', body: { email, password, name } }),
  me: () => request<User>('/api/users/me'),

  tickets: (q: Record<string, string | number | undefined>) => request<Page<Ticket>>(`/api/tickets${qs(q)}`),
  ticket: (id: string) => request<Ticket>(`/api/tickets/${encodeURIComponent(id)}`),
  createTicket: (body: { subject: string; description: string; priority?: string; category?: string }) =>
    request<Ticket>('/api/tickets', { method: 'POST', body }),
  updateTicket: (id: string, patch: Record<string, unknown>, version?: number) =>
    request<Ticket>(`/api/tickets/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch, ifMatch: version }),
  deleteTicket: (id: string) => request<void>(`/api/tickets/${encodeURIComponent(id)}`, { method: 'DELETE' }),

  comments: (ticketId: string, cursor?: string) =>
    request<Page<Comment>>(`/api/tickets/${encodeURIComponent(ticketId)}/comments${qs({ limit: 200, cursor })}`),
  addComment: (ticketId: string, body: { content: string; parent_id?: string | null; internal?: boolean; seen_event_id?: number }) =>
    request<Comment>(`/api/tickets/${encodeURIComponent(ticketId)}/comments`, { method: 'POST', body }),
  deleteComment: (id: string) => request<void>(`/api/comments/${encodeURIComponent(id)}`, { method: 'DELETE' }),

  attachments: (ticketId: string) => request<Attachment[]>(`/api/tickets/${encodeURIComponent(ticketId)}/attachments`),
  deleteAttachment: (id: string) => request<void>(`/api/attachments/${encodeURIComponent(id)}`, { method: 'DELETE' }),

  articles: (q: Record<string, string | undefined>) => request<Page<Article>>(`/api/kb/articles${qs(q)}`),
  article: (id: string) => request<Article>(`/api/kb/articles/${encodeURIComponent(id)}`),
  createArticle: (body: Record<string, unknown>) => request<Article>('/api/kb/articles', { method: 'POST', body }),
  updateArticle: (id: string, patch: Record<string, unknown>, version?: number) =>
    request<Article>(`/api/kb/articles/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch, ifMatch: version }),
  deleteArticle: (id: string) => request<void>(`/api/kb/articles/${encodeURIComponent(id)}`, { method: 'DELETE' }),

  users: (q: Record<string, string | number | undefined> = {}) => request<Page<User>>(`/api/users${qs({ limit: 200, ...q })}`),
  createUser: (body: { email: string; password: string; name: string; role: Role }) => request<User>('/api/users', { method: 'POST', body }),
  deactivateUser: (id: string) => request<User>(`/api/users/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  updateUser: (id: string, patch: Record<string, unknown>, version?: number) =>
    request<User>(`/api/users/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch, ifMatch: version }),

  notifications: (unread?: boolean) => request<Page<Notification>>(`/api/notifications${qs({ unread: unread ? 'true' : undefined, limit: 50 })}`),
  unreadCount: () => request<{ count: number; more?: boolean }>('/api/notifications/unread-count'),
  markRead: (id: string) => request<Notification>(`/api/notifications/${encodeURIComponent(id)}/read`, { method: 'POST' }),
  markAllRead: () => request<{ count: number }>('/api/notifications/read-all', { method: 'POST' }),

  webhook: () => request<Endpoint>('/api/users/me/webhook'),
  setWebhook: (webhook_url: string) => request<Endpoint>('/api/users/me/webhook', { method: 'PUT', body: { webhook_url } }),
  deleteWebhook: () => request<void>('/api/users/me/webhook', { method: 'DELETE' }),
  testWebhook: () => request<{ delivery_id: string }>('/api/users/me/webhook/test', { method: 'POST' }),
  deliveries: () => request<Page<Delivery>>(`/api/users/me/webhook/deliveries${qs({ limit: 50 })}`),
  delivery: (id: string) => request<Delivery>(`/api/users/me/webhook/deliveries/${encodeURIComponent(id)}`),

  people: (q: Record<string, string | number | undefined> = {}) => request<Page<Person>>(`/api/users${qs({ limit: 200, ...q })}`),
  timeline: (ticketId: string) => request<TimelineEntry[]>(`/api/tickets/${encodeURIComponent(ticketId)}/timeline`),
  suggestedArticles: (ticketId: string) => request<Article[]>(`/api/tickets/${encodeURIComponent(ticketId)}/suggested-articles`),
  cannedReplies: () => request<CannedReply[]>('/api/canned-replies'),
  createCannedReply: (body: { title: string; body: string }) => request<CannedReply>('/api/canned-replies', { method: 'POST', body }),
  updateCannedReply: (id: string, patch: Record<string, unknown>, version?: number) =>
    request<CannedReply>(`/api/canned-replies/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch, ifMatch: version }),
  deleteCannedReply: (id: string) => request<void>(`/api/canned-replies/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  preferences: () => request<Preferences>('/api/users/me/notification-preferences'),
  setPreferences: (body: Partial<Preferences>) => request<Preferences>('/api/users/me/notification-preferences', { method: 'PUT', body }),
  setupStatus: () => request<{ needed: boolean }>('/api/setup'),
  setup: (body: { token: string; email: string; name: string; password: string }) =>
    request<TokenResponse>('/api/setup', { method: 'POST', body }),

  importCsv: (csv: string) =>
    request<ImportResult>('/api/integrations/webhook/batch', { method: 'POST', raw: csv, contentType: 'text/csv' }),
};

export interface ImportRow {
  index: number;
  line: number | null;
  status: 'created' | 'updated' | 'failed';
  ticket_id: string | null;
  ticket_number: number | null;
  external_id: string | null;
  error: { code: string; detail: string } | null;
}

export interface ImportResult {
  created_count: number;
  updated_count: number;
  failed_count: number;
  results: ImportRow[];
}

/** Uploads a file with XMLHttpRequest so the upload progress can be shown. */
export function uploadAttachment(ticketId: string, file: File, onProgress: (fraction: number) => void): { promise: Promise<Attachment>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<Attachment>((resolve, reject) => {
    xhr.open('POST', `/api/tickets/${encodeURIComponent(ticketId)}/attachments`);
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* empty */
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body as Attachment);
      } else reject(new ApiError(xhr.status, body?.code ?? `http_${xhr.status}`, body?.detail ?? xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'upload failed: network error'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled'));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Downloads an attachment (the content route needs the bearer header, so fetch + blob). */
export async function downloadAttachment(a: Attachment): Promise<void> {
  const res = await fetch(`/api/attachments/${encodeURIComponent(a.id)}/content`, { headers: headers() });
  if (!res.ok) throw await errorFrom(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = a.filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.detail || e.code;
  if (e instanceof Error) return e.message;
  return String(e);
}
