// Small DOM helpers: pages are built with createElement, never innerHTML, so no value from
// the API (a CSV cell, a transcript) can ever run as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && !(el instanceof SVGElement) && typeof value !== "string") {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/x", class: "btn"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, for the chart. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return fill(el, {}, children);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const pad = (n) => String(n).padStart(2, "0");

/** A time the way a person reads it: today's as 14:03:09, older ones with their date. */
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Seconds as "42.1 s", "3 min 05 s", "2 h 04 min". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${pad(Math.round(seconds % 60))} s`;
  return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
}

export function plural(n, word, many = `${word}s`) {
  return `${n.toLocaleString()} ${n === 1 ? word : many}`;
}

/** The five call statuses, in the order a progress bar shows them. */
export const STATUSES = ["completed", "failed", "cancelled", "active", "waiting"];

/** A stacked bar of a batch's calls by status, with a legend a test (or a person) can read. */
export function progressBar(counts) {
  const total = counts.total || 0;
  const bar = h("div", { class: "bar", role: "img" });
  const legend = h("div", { class: "legend" });
  const parts = [];
  for (const status of STATUSES) {
    const n = counts[status] || 0;
    if (total > 0 && n > 0) {
      const seg = h("span", { class: `seg ${status}`, title: `${status}: ${n}` });
      seg.style.width = `${(100 * n) / total}%`;
      bar.append(seg);
    }
    parts.push(`${status} ${n}`);
    legend.append(
      h("span", { class: `key ${status}`, "data-status": status }, h("i"), `${status} `, h("b", { text: String(n) }))
    );
  }
  bar.setAttribute("aria-label", `${parts.join(", ")} of ${total}`);
  return h("div", { class: "progress" }, bar, legend);
}

export function badge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status, text: status });
}
