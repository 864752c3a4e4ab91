// The public API, as every client uses it: bearer tokens with refresh-token rotation.
//
// Tokens live in localStorage (the strict Content-Security-Policy keeps foreign scripts out).
// An access token lasts minutes; on a 401 the refresh token is exchanged once for a new pair
// (the old refresh token then stops working, and reusing it ends the sign-in). Tabs share the
// tokens: a Web Lock makes them refresh one at a time, and a tab that waited uses the pair the
// other one stored instead of spending an already-used refresh token.

const TOKENS_KEY = 'skintrack.tokens';
const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  get fieldErrors() { return this.problem.errors || {}; }
}

export class SignedOut extends Error {}

export function tokens() {
  try { return JSON.parse(localStorage.getItem(TOKENS_KEY)); } catch { return null; }
}

export function saveTokens(pair) {
  localStorage.setItem(TOKENS_KEY, JSON.stringify({access_token: pair.access_token, refresh_token: pair.refresh_token}));
}

export function forgetTokens() { localStorage.removeItem(TOKENS_KEY); }

export function signedIn() { return !!(tokens() && tokens().refresh_token); }

let refreshing = null;

async function exchange(staleAccess) {
  const current = tokens();
  if (!current) throw new SignedOut();
  if (current.access_token !== staleAccess) return current;  // another tab refreshed meanwhile
  const response = await fetch(`${API}/auth/refresh`, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({refresh_token: current.refresh_token}),
  });
  if (response.status === 401) { forgetTokens(); throw new SignedOut(); }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const pair = await response.json();
  saveTokens(pair);
  return pair;
}

function refresh(staleAccess) {
  if (!refreshing) {
    const run = () => exchange(staleAccess);
    const locked = navigator.locks ? navigator.locks.request('skintrack-token-refresh', run) : run();
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function problemOf(response) {
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) { try { return await response.json(); } catch { return null; } }
  return null;
}

/**
 * Call the API. `options`: method, json (a body to send as JSON), body + contentType (raw),
 * headers, raw (return the Response, e.g. for images), auth (default true).
 * Throws ApiError for answers >= 400 (with the problem+json body), SignedOut when the sign-in
 * ended, and TypeError when the network is unreachable.
 */
export async function api(path, options = {}) {
  const {method = 'GET', json, body, contentType, headers = {}, raw = false, auth = true} = options;
  const send = async (access) => {
    const all = {...headers};
    if (auth && access) all.Authorization = `Bearer ${access}`;
    let payload = body;
    if (json !== undefined) { payload = JSON.stringify(json); all['Content-Type'] = 'application/json'; }
    else if (contentType) all['Content-Type'] = contentType;
    return fetch(path.startsWith('/') && !path.startsWith(API) ? API + path : path, {method, headers: all, body: payload});
  };
  let access = auth ? (tokens() || {}).access_token : null;
  if (auth && !access) throw new SignedOut();
  let response = await send(access);
  if (response.status === 401 && auth) {
    access = (await refresh(access)).access_token;
    response = await send(access);
    if (response.status === 401) { forgetTokens(); throw new SignedOut(); }
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (raw) return response;
  if (response.status === 204) return null;
  return (response.headers.get('Content-Type') || '').includes('json') ? response.json() : response.text();
}

/** An object URL of an image the API serves to the signed-in user (img src cannot send a bearer token). */
export async function imageUrl(path) {
  const response = await api(path, {raw: true});
  return URL.createObjectURL(await response.blob());
}

export async function signIn(email, password) {
  saveTokens(await api('/auth/login', {method: 'POST', json: {email, password}, auth: false}));
}

export async function enrol(secret, email, password) {
  saveTokens(await api('/auth/enrol', {method: 'POST', json: {...secret, email, password}, auth: false}));
}

export async function signOut() {
  try { await api('/auth/logout', {method: 'POST'}); } catch { /* signed out locally anyway */ }
  forgetTokens();
}
