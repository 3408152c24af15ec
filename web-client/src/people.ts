// Who is who, for staff: the active agents and admins (to assign and to name authors), loaded
// once per session and shared by every page.
import { useEffect, useState } from 'preact/hooks';
import { api, type Person, type User } from './api';
import { Store, isStaff, session, useStore } from './store';

export const staffPeople = new Store<Person[] | null>(null);
let loading: Promise<void> | null = null;

export function loadStaff(force = false): Promise<void> {
  if (loading && !force) return loading;
  loading = Promise.all([api.people({ role: 'agent', is_active: 'true' }), api.people({ role: 'admin', is_active: 'true' })])
    .then(([agents, admins]) => staffPeople.set([...admins.items, ...agents.items].sort((a, b) => a.name.localeCompare(b.name))))
    .catch(() => {
      loading = null;
    });
  return loading;
}

session.subscribe((s) => {
  staffPeople.set(null);
  loading = null;
  if (s && isStaff(s.user)) void loadStaff();
});

/** Active staff who can be assigned a ticket (the signed-in staff member at least). */
export function useStaff(me: User | undefined): Person[] {
  const people = useStore(staffPeople);
  useEffect(() => {
    if (me && isStaff(me)) void loadStaff();
  }, [me?.id]);
  if (!me || !isStaff(me)) return [];
  return people ?? [{ id: me.id, name: me.name, email: me.email, role: me.role, is_active: true }];
}

/** A staff member's name by id, if known. */
export function useStaffName(): (id: string | null | undefined) => string | undefined {
  const people = useStore(staffPeople);
  return (id) => (id ? people?.find((p) => p.id === id)?.name : undefined);
}

export function useLoaded<T>(load: () => Promise<T>, deps: unknown[]): T | null {
  const [v, setV] = useState<T | null>(null);
  useEffect(() => {
    let on = true;
    load().then((x) => on && setV(x), () => {});
    return () => {
      on = false;
    };
  }, deps);
  return v;
}
