import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, type Role, type User } from '../api';
import { live } from '../live';
import { InFlight, applyEvent, emptyList, mergePage, type ListState } from '../merge';
import { session, toast, useStore } from '../store';
import { ErrorBox, PageTitle, Spinner, formatDate, label } from '../ui';

export function UsersPage() {
  const me = useStore(session)?.user;
  const [list, setList] = useState<ListState<User>>(emptyList());
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const inFlight = useRef(new InFlight<User>()).current;

  async function load(append = false) {
    setLoading(true);
    if (!append) inFlight.start();
    try {
      const page = await api.users({ limit: 50, cursor: append ? (cursor ?? undefined) : undefined });
      setList((cur) => mergePage(append ? cur : inFlight.take(cur.tombstones), page.items, { append }));
      setCursor(page.next_cursor);
    } catch (e) {
      if (!append) inFlight.take({});
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    const offs = [
      live.on('user.update', (ev) => {
        if (ev?.action !== 'deleted') inFlight.saw(ev?.data);
        setList((cur) => applyEvent(cur, ev, { place: 'top' }));
      }),
      live.onResync(() => void load()),
    ];
    void load();
    return () => offs.forEach((o) => o());
  }, []);

  async function deactivate(u: User) {
    if (!confirm(`Deactivate ${u.name}? They will no longer be able to sign in.`)) return;
    try {
      const updated = await api.deactivateUser(u.id);
      setList((cur) => applyEvent(cur, { event_id: -1, action: 'updated', data: updated }));
    } catch (e) {
      toast(errorText(e));
    }
  }

  async function reactivate(u: User) {
    try {
      const updated = await api.updateUser(u.id, { is_active: true }, u.version);
      setList((cur) => applyEvent(cur, { event_id: -1, action: 'updated', data: updated }));
    } catch (e) {
      toast(errorText(e));
    }
  }

  async function changeRole(u: User, role: Role) {
    try {
      const updated = await api.updateUser(u.id, { role }, u.version);
      setList((cur) => applyEvent(cur, { event_id: -1, action: 'updated', data: updated }));
      toast(`${u.name} is now ${label(role).toLowerCase()}`);
    } catch (e) {
      toast(errorText(e));
    }
  }

  async function setPassword(u: User) {
    const pw = prompt(`New password for ${u.name} (at least 8 characters). Their sessions end.`);
    if (!pw) return;
    try {
      const updated = await api.updateUser(u.id, { password: pw }, u.version);
      setList((cur) => applyEvent(cur, { event_id: -1, action: 'updated', data: updated }));
      toast(`Password set for ${u.name}`);
    } catch (e) {
      toast(errorText(e));
    }
  }

  return (
    <section>
      <PageTitle>Users</PageTitle>
      <CreateUser onCreated={(u) => setList((cur) => applyEvent(cur, { event_id: -1, action: 'created', data: u }, { place: 'top' }))} />
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table class="users">
          <caption class="sr-only">All users</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((u) => (
              <tr key={u.id} data-user-id={u.id}>
                <td>{u.name}</td>
                <td>{u.email}</td>
                <td>
                  {u.id === me?.id ? (
                    label(u.role)
                  ) : (
                    <select aria-label={`Role of ${u.name}`} value={u.role} onChange={(e) => changeRole(u, e.currentTarget.value as Role)}>
                      <option value="customer">Customer</option>
                      <option value="agent">Agent</option>
                      <option value="admin">Admin</option>
                    </select>
                  )}
                </td>
                <td>{u.is_active ? 'Active' : 'Deactivated'}</td>
                <td>{formatDate(u.created_at)}</td>
                <td class="row-actions">
                  <button type="button" class="link" onClick={() => setPassword(u)}>
                    Set password <span class="sr-only">for {u.name}</span>
                  </button>{' '}
                  {u.id !== me?.id &&
                    (u.is_active ? (
                      <button type="button" class="link danger" onClick={() => deactivate(u)}>
                        Deactivate <span class="sr-only">{u.name}</span>
                      </button>
                    ) : (
                      <button type="button" class="link" onClick={() => reactivate(u)}>
                        Reactivate <span class="sr-only">{u.name}</span>
                      </button>
                    ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {cursor && (
        <button type="button" onClick={() => load(true)} disabled={loading}>
          Load more
        </button>
      )}
      {loading && <Spinner />}
    </section>
  );
}

function CreateUser({ onCreated }: { onCreated: (u: User) => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('agent');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const u = await api.createUser({ email: email.trim(), name: name.trim(), password, role });
      onCreated(u);
      toast(`Created ${u.name}`);
      setEmail('');
      setName('');
      setPassword('');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card" onSubmit={submit} aria-labelledby="create-user-h">
      <h2 id="create-user-h">Create a user</h2>
      <div class="row">
        <label>
          Name
          <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Email
          <input name="email" type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            <option value="customer">Customer</option>
            <option value="agent">Agent</option>
            <option value="admin">Admin</option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={busy}>
          Create
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}
