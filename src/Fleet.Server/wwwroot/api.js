// The admin API as the dashboard calls it: same-origin fetch with the session cookie, and the CSRF header on
// anything that changes state. Errors carry the API's own problem+json detail, shown as is next to the form.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

let onUnauthorized = () => {};
/** Called when a call answers 401 (the session ended: its key was deleted, or the cookie is gone). */
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export async function api(method, path, body, { headers = {}, quiet401 = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (method !== 'GET' && method !== 'HEAD') h['X-Fleet-Dashboard'] = '1';
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers: h, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `the node did not answer (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onUnauthorized();
    const detail = json?.detail ?? json?.title ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return json;
}

/** The session of the key typed into the login form: the node answers with a cookie that holds it. */
export function logIn(key) {
  return api('POST', '/api/v1/session', undefined, { headers: { Authorization: `Bearer ${key}` }, quiet401: true });
}

export const logOut = () => api('DELETE', '/api/v1/session');
export const currentSession = () => api('GET', '/api/v1/session', undefined, { quiet401: true });

/** A query string of the non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

/** Who is logged in. The pages leave out what the role may not do; the API refuses it anyway (403). */
export const session = { keyName: null, role: null };
export const may = {
  operate: () => session.role === 'operator' || session.role === 'admin',
  administer: () => session.role === 'admin',
};
