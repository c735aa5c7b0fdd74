// Bits several pages share.

/**
 * A warning when no worker is alive to dial queued batches, if this server's /readyz says
 * which workers it has seen (older servers do not: then nothing is claimed either way).
 */
export async function workersWarning() {
  try {
    const res = await fetch("/readyz", { credentials: "omit", cache: "no-store" });
    const body = await res.json();
    const workers = body.workers;
    const none = Array.isArray(workers) ? workers.length === 0 : workers === 0;
    if (none) return "No worker has been seen in the last minute: queued batches will not start until one runs (dialbatch serve or dialbatch worker).";
  } catch {
    // no answer: say nothing rather than guess
  }
  return null;
}

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };

/** A `callingWindow` in one line: "Mon–Fri 09:00–17:00 · Sat 10:00–14:00, recipient's time". */
export function summarizeWindow(win) {
  const days = win.days || {};
  const key = (d) => (days[d] || []).map(([a, b]) => `${a}–${b}`).join(", ");
  const groups = []; // runs of consecutive days with the same ranges
  for (const d of WEEKDAYS) {
    const ranges = key(d);
    const last = groups[groups.length - 1];
    if (last && last.ranges === ranges && WEEKDAYS.indexOf(last.to) === WEEKDAYS.indexOf(d) - 1) last.to = d;
    else groups.push({ from: d, to: d, ranges });
  }
  const open = groups.filter((g) => g.ranges).map((g) => `${DAY_NAMES[g.from]}${g.to !== g.from ? `–${DAY_NAMES[g.to]}` : ""} ${g.ranges}`);
  const zone = !win.timezone || win.timezone === "recipient" ? "in each recipient's own time" : `in ${win.timezone}`;
  const skips = (win.skipDates || []).length ? `; skips ${win.skipDates.join(", ")}` : "";
  return `${open.join(" · ") || "never open"}, ${zone}${skips}`;
}

/** Any settings value in words: scalars as they are, objects as `key value` pairs. */
export function describeValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(describeValue).join(", ");
  return Object.entries(value).map(([k, v]) => `${k} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join(" · ");
}
