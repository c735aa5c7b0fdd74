// Live updates: the server's event stream when it has one, polling every 2 s when it does
// not. Any event is only a hint that "something changed": the page then refetches what it
// shows from the API, so a lost, repeated or unknown event can never leave it wrong.

import { ApiError, post } from "./api.js";

export const POLL_MS = 2000;
// While the stream is up, a look every 30 s anyway: a change that no event announces (or an
// event lost on the way) is then stale for 30 s at most, for one request.
export const LIVE_CHECK_MS = 30000;
const EVENT_NAMES = [
  "call.started",
  "call.completed",
  "call.failed",
  "call.retry_scheduled",
  "batch.started",
  "batch.completed",
  "batch.cancelled",
  "batch.paused",
  "batch.resumed",
];

const indicator = () => document.getElementById("live");

function showMode(mode) {
  const el = indicator();
  if (!el) return;
  const words = {
    live: "● live",
    polling: "polling every 2 s",
    reconnecting: "reconnecting…",
  };
  el.hidden = false;
  el.dataset.mode = mode;
  el.textContent = words[mode] || mode;
  el.title =
    mode === "polling"
      ? "This server has no live event stream: the page asks for news every 2 seconds"
      : mode === "live"
        ? "Updates arrive from the server's event stream"
        : "The event stream dropped: reconnecting, and polling meanwhile";
}

/**
 * Call `onChange(event|null)` whenever what `streamPath` covers may have changed.
 * Returns a function that stops watching.
 */
export function watch(streamPath, onChange) {
  let closed = false;
  let source = null;
  let pollTimer = null;
  let retryTimer = null;
  let retryMs = 1000;
  let lastId = null;

  let pollEvery = 0;
  const startPolling = (ms = POLL_MS) => {
    if (pollTimer !== null && pollEvery === ms) return;
    if (pollTimer !== null) clearInterval(pollTimer);
    pollEvery = ms;
    pollTimer = setInterval(() => onChange(null), ms);
  };
  const stopPolling = () => {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  };
  const retryLater = () => {
    if (closed || retryTimer !== null) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  };

  async function connect() {
    let token;
    try {
      token = await post("/v1/api/events/token");
    } catch (err) {
      if (closed) return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
        // A server without live events: polling is the whole story.
        showMode("polling");
        startPolling();
        return;
      }
      if (err instanceof ApiError && err.status === 401) return; // signed out already
      showMode("reconnecting");
      startPolling();
      retryLater();
      return;
    }
    if (closed) return;
    const url = new URL(streamPath, location.origin);
    url.searchParams.set("token", token.token);
    if (lastId !== null) url.searchParams.set("lastEventId", lastId);
    const es = new EventSource(url);
    source = es;
    es.onopen = () => {
      retryMs = 1000;
      startPolling(LIVE_CHECK_MS);
      showMode("live");
      onChange(null); // catch up on anything missed while away
    };
    es.addEventListener("snapshot", (e) => {
      // A fresh stream's snapshot carries the resume point: remembered like an event's id,
      // so a reconnect with a fresh token catches up from there even if no event came.
      if (e.lastEventId) lastId = e.lastEventId;
      onChange({ type: "snapshot", data: parse(e.data) });
    });
    for (const name of EVENT_NAMES) {
      es.addEventListener(name, (e) => {
        if (e.lastEventId) lastId = e.lastEventId;
        onChange({ type: name, data: parse(e.data) });
      });
    }
    es.onerror = () => {
      if (closed || source !== es) return;
      showMode("reconnecting");
      startPolling();
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (say the token expired and the server answered 401):
        // a fresh token, and resume after the last event seen.
        es.close();
        source = null;
        retryLater();
      }
      // Otherwise the browser reconnects by itself, sending Last-Event-ID.
    };
  }

  connect();
  return () => {
    closed = true;
    stopPolling();
    if (retryTimer !== null) clearTimeout(retryTimer);
    if (source) source.close();
    source = null;
  };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Run `fn` now, but never twice at once, nor more often than every `gapMs`: a burst of
 * events costs one refetch, and the last event of a burst is always followed by one.
 */
export function coalesce(fn, gapMs = 300) {
  let running = false;
  let again = false;
  let last = 0;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const wait = last + gapMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      last = Date.now();
      await fn();
    } catch (err) {
      console.warn("refresh failed", err);
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  };
}
