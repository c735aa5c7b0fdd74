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
export const patch = (path, opts) => request(path, { method: "PATCH", ...opts });
export const put = (path, opts) => request(path, { method: "PUT", ...opts });
export const del = (path, opts) => request(path, { method: "DELETE", ...opts });

/** What this server offers beyond the contract, read from its OpenAPI document once. */
let features = null;
export async function serverFeatures() {
  if (features) return features;
  const found = { batchActions: {}, paths: {}, schemas: {} };
  try {
    const res = await fetch("/openapi.json", { credentials: "omit" });
    const doc = await res.json();
    const paths = doc.paths || {};
    for (const action of ["pause", "resume", "retry-failed"]) {
      const ops = paths[`/v1/api/batch-calls/{batchId}/${action}`];
      if (ops) found.batchActions[action] = ["post", "put", "patch"].find((m) => m in ops) || "post";
    }
    found.paths = paths;
    found.schemas = (doc.components && doc.components.schemas) || {};
  } catch {
    // No document: show only what the contract guarantees (cancel).
  }
  features = found;
  return features;
}

/** Whether the server has `method` (lower case) on `path`, per its OpenAPI document. */
export function has(feats, path, method = "get") {
  const ops = feats && feats.paths && feats.paths[path];
  return Boolean(ops && method in ops);
}

/** The JSON schema of an operation's request body, `$ref`s one level deep resolved. */
export function bodySchema(feats, path, method) {
  const op = feats && feats.paths && feats.paths[path] && feats.paths[path][method];
  const content = op && op.requestBody && op.requestBody.content;
  const schema = content && content["application/json"] && content["application/json"].schema;
  return resolveRef(feats, schema);
}

/** A schema with its `$ref` (and a `oneOf` of one schema and null) replaced by the target. */
export function resolveRef(feats, schema) {
  if (!schema) return null;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return (feats.schemas && feats.schemas[name]) || null;
  }
  const choices = schema.oneOf || schema.anyOf;
  if (choices) {
    const real = choices.filter((c) => c.type !== "null");
    if (real.length === 1) return resolveRef(feats, real[0]);
  }
  return schema;
}
