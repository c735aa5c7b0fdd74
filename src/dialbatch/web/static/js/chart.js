// The chart of calls finished over time: an SVG drawn here, from the end times the API
// gives (or from sampled progress counts for a batch too large to list).

import { fmtTime, s } from "./dom.js";

const W = 640;
const H = 200;
const PAD = { left: 44, right: 12, top: 12, bottom: 26 };

/**
 * points: [{t, completed, failed}] cumulative counts, in time order.
 * Draws completed as the lower area and failed stacked on top of it, as steps.
 */
export function finishedChart(points, { from, to, note } = {}) {
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": "Calls finished over time",
  });
  svg.append(s("title", { text: "Calls finished over time" }));
  const last = points[points.length - 1] || { completed: 0, failed: 0 };
  const top = Math.max(1, last.completed + last.failed);
  const t0 = from ?? (points[0] ? points[0].t : Date.now());
  const t1 = Math.max(to ?? (points.length ? points[points.length - 1].t : t0), t0 + 1000);
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (n) => H - PAD.bottom - (n / top) * (H - PAD.top - PAD.bottom);

  // axes and their labels
  svg.append(
    s("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
    s("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
    s("text", { class: "tick", x: PAD.left - 6, y: y(top) + 4, "text-anchor": "end", text: String(top) }),
    s("text", { class: "tick", x: PAD.left - 6, y: y(0) + 4, "text-anchor": "end", text: "0" }),
    s("text", { class: "tick", x: PAD.left, y: H - 8, text: fmtTime(t0) }),
    s("text", { class: "tick", x: W - PAD.right, y: H - 8, "text-anchor": "end", text: fmtTime(t1) })
  );
  if (!points.length) {
    svg.append(s("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle", text: "No call has finished yet" }));
    return svg;
  }
  // A step curve of a cumulative count, as [[t, n], ...] from t0 to t1.
  const steps = (value) => {
    const pts = [[t0, 0]];
    let prev = 0;
    for (const p of points) {
      pts.push([p.t, prev], [p.t, value(p)]);
      prev = value(p);
    }
    pts.push([t1, prev]);
    return pts;
  };
  const path = (pts) => pts.map(([t, n], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(n).toFixed(1)}`).join(" ");
  const area = (upper, lower) => `${path([...steps(upper), ...steps(lower).reverse()])} Z`;
  const total = (p) => p.completed + p.failed;
  svg.append(
    s("path", { class: "area completed", d: area((p) => p.completed, () => 0) }),
    s("path", { class: "area failed", d: area(total, (p) => p.completed) }),
    s("path", { class: "line", d: path(steps(total)) })
  );
  if (note) svg.append(s("text", { class: "tick", x: W - PAD.right, y: PAD.top + 10, "text-anchor": "end", text: note }));
  return svg;
}

/** Cumulative points from individual finish times: [{t, ok}] -> [{t, completed, failed}]. */
export function cumulate(finishes) {
  const sorted = [...finishes].sort((a, b) => a.t - b.t);
  const out = [];
  let completed = 0;
  let failed = 0;
  for (const f of sorted) {
    if (f.ok) completed += 1;
    else failed += 1;
    const last = out[out.length - 1];
    if (last && last.t === f.t) Object.assign(last, { completed, failed });
    else out.push({ t: f.t, completed, failed });
  }
  return out;
}
