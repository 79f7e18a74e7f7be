// Sign-in: where the end user's token comes from. The relay's /api/client-config says which ways
// exist: `dev_mode` (one click: GET /dev/token, only on a relay with no JWT secret, which listens on
// loopback) and `login_url` (the hook for a real sign-in page: the page is opened with
// `?return_to=<this page>` and sends the user back with `#token=<jwt>` in the URL; the relay does
// not configure one yet). A pasted token always works. The token lives in sessionStorage only.

const KEY = 'realtime-relay.token';

/** The relay's client configuration; with a token, it also lists the models served. */
export async function clientConfig(token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const r = await fetch('api/client-config', { headers, cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error('refused'), { error: body.error || { code: `http ${r.status}` } });
  return body;
}

/** A dev token for `user` (dev mode only). */
export async function devToken(user) {
  const r = await fetch(`dev/token?user=${encodeURIComponent(user || 'dev')}`, { cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error('refused'), { error: body.error || { code: `http ${r.status}` } });
  return body.token;
}

/** Send the browser to the configured sign-in page. */
export function goToLogin(loginUrl) {
  const url = new URL(loginUrl, location.href);
  url.searchParams.set('return_to', location.href.split('#')[0]);
  location.assign(url.toString());
}

/** A token handed back by a sign-in page in the URL fragment (removed from the address bar). */
export function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

export function savedToken() {
  return sessionStorage.getItem(KEY);
}

export function saveToken(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

/** The claims of a JWT, unverified (to show who is signed in and until when). */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}
