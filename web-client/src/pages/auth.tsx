import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { navigate } from '../router';
import { signIn } from '../store';
import { ErrorBox, PageTitle } from '../ui';

export function AuthPage({ mode }: { mode: 'login' | 'register' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = mode === 'login' ? await api.login(email.trim(), password) : await api.register(email.trim(), password, name.trim());
      signIn(res.access_token, res.user);
      const back = new URLSearchParams(location.search).get('next');
      navigate(back && back.startsWith('/') && !back.startsWith('//') ? back : '/tickets', true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  const [setupNeeded, setSetupNeeded] = useState(false);
  useEffect(() => {
    if (mode === 'login') api.setupStatus().then((r) => setSetupNeeded(r.needed), () => {});
  }, [mode]);

  return (
    <section class="auth card">
      <PageTitle>{mode === 'login' ? 'Sign in' : 'Create an account'}</PageTitle>
      {setupNeeded && (
        <p class="notice" role="status" data-testid="setup-hint">
          This helpdesk has no admin yet. The server printed a one-time setup link when it started: look in its log (the
          terminal that runs <code>run.sh</code> or <code>ticketwire serve</code>) for the line starting{' '}
          <code>ticketwire first-run setup</code> and open that link to create the first admin.
        </p>
      )}
      <form onSubmit={submit}>
        {mode === 'register' && (
          <label>
            Name
            <input name="name" autoComplete="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            required
            minLength={mode === 'register' ? 8 : undefined}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Sign in' : 'Register'}
        </button>
      </form>
      <p>
        {mode === 'login' ? (
          <>
            No account? <a href="/register">Register</a>
          </>
        ) : (
          <>
            Have an account? <a href="/login">Sign in</a>
          </>
        )}
      </p>
      <p>
        <a href="/kb">Browse the knowledge base</a>
      </p>
    </section>
  );
}

/** First run: creates the first admin from the setup link the server printed. */
export function SetupPage() {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const [needed, setNeeded] = useState<boolean | null>(null);
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.setupStatus().then((r) => setNeeded(r.needed), (e) => setError(errorText(e)));
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await api.setup({ token, email: email.trim(), name: name.trim(), password });
      signIn(res.access_token, res.user);
      navigate('/users', true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="auth card">
      <PageTitle>Set up ticketwire</PageTitle>
      {needed === false ? (
        <p>
          This helpdesk has an admin already. <a href="/login">Sign in</a>.
        </p>
      ) : !token ? (
        <p class="notice">
          Open the setup link the server printed in its log when it started (the line starting <code>ticketwire first-run setup</code>).
        </p>
      ) : (
        <form onSubmit={submit}>
          <p>Create the first admin account. It can then invite agents and manage everything else.</p>
          <label>
            Your name
            <input name="name" autoComplete="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <label>
            Email
            <input name="email" type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </label>
          <label>
            Password (at least 8 characters)
            <input
              name="password"
              type="password"
              autoComplete="new-password"
              required
              minLength={8}
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </label>
          <ErrorBox error={error} />
          <button type="submit" class="primary" disabled={busy}>
            Create admin account
          </button>
        </form>
      )}
    </section>
  );
}
