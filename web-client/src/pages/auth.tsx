import { useState } from 'preact/hooks';
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

  return (
    <section class="auth card">
      <PageTitle>{mode === 'login' ? 'Sign in' : 'Create an account'}</PageTitle>
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
