// The public API, called exactly as any client calls it: the two headers, nothing else.
// The key lives in sessionStorage (this tab only, gone when it closes), never in a cookie.

const SESSION = "dialbatch.session";

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.message || body.error)) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

export function getSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

export function setSession(workspaceId, apiKey) {
  sessionStorage.setItem(SESSION, JSON.stringify({ workspaceId, apiKey }));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION);
}

let onUnauthorized = () => {};

/** Who to tell when the key stops working mid-session (revoked, rotated). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, String(v));
  }
  return u;
}

/**
 * One API request. Resolves to the parsed JSON body; rejects with ApiError (status 0 when
 * the server could not be reached). A 401 signs the user out, unless `signin` is set (the
 * sign-in page shows that answer itself).
 */
export async function request(path, { method = "GET", query, form, json, session, signin } = {}) {
  const who = session || getSession();
  const headers = {};
  if (who) {
    headers["x-api-key"] = who.apiKey;
    headers["x-workspace-id"] = who.workspaceId;
  }
  let body;
  if (form) body = form;
  else if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(url(path, query), { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, { error: "Network error", message: `The server could not be reached (${err.message})` });
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text.slice(0, 300) };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, parsed);
    if (res.status === 401 && !signin) onUnauthorized(err);
    throw err;
  }
  return parsed;
}

export const get = (path, query) => request(path, { query });
export const post = (path, opts) => request(path, { method: "POST", ...opts });

/** What this server offers beyond the contract, read from its OpenAPI document once. */
let features = null;
export async function serverFeatures() {
  if (features) return features;
  const found = { batchActions: {} };
  try {
    const res = await fetch("/openapi.json", { credentials: "omit" });
    const doc = await res.json();
    const paths = doc.paths || {};
    for (const action of ["pause", "resume", "retry-failed"]) {
      const ops = paths[`/v1/api/batch-calls/{batchId}/${action}`];
      if (ops) found.batchActions[action] = ["post", "put", "patch"].find((m) => m in ops) || "post";
    }
  } catch {
    // No document: show only what the contract guarantees (cancel).
  }
  features = found;
  return features;
}
