// The batches of the workspace, newest first, each with its live progress bar.

import { get } from "../api.js";
import { badge, fmtTime, h, plural, progressBar, replace } from "../dom.js";
import { coalesce, watch } from "../live.js";
import { workersWarning } from "./common.js";

const LIMIT = 20;

export class BatchesPage {
  mount(root, route) {
    this.page = Number(route.query.get("page")) || 1;
    this.statuses = new Map(); // batchId -> last /status answer
    this.list = h("div", { id: "batches" }, h("p", { class: "muted", text: "Loading…" }));
    this.pager = h("div", { class: "pager" });
    this.warning = h("p", { class: "warn", id: "workers-warning", hidden: true });
    root.append(
      h(
        "section",
        { class: "card" },
        h("div", { class: "row" }, h("h1", { text: "Batches" }), h("span", { class: "spacer" }), h("a", { class: "button primary", href: "#/new", text: "New batch" })),
        this.warning,
        this.list,
        this.pager
      )
    );
    // Each refresh asks for the status of every running batch on the page: once a second
    // at most, however many events arrive.
    this.refresh = coalesce(() => this.load(), 1000);
    this.stop = watch("/v1/api/events", () => this.refresh());
    this.refresh();
  }

  update(route) {
    this.page = Number(route.query.get("page")) || 1;
    this.refresh();
  }

  unmount() {
    this.stop();
  }

  async load() {
    const answer = await get("/v1/api/batch-calls", { page: this.page, limit: LIMIT });
    // A running batch's figures change; a finished one's do not: ask only for those.
    await Promise.all(
      answer.batches.map(async (b) => {
        const known = this.statuses.get(b.id);
        if (known && known.isComplete && known.status === b.status) return;
        try {
          this.statuses.set(b.id, await get(`/v1/api/batch-calls/${encodeURIComponent(b.id)}/status`));
        } catch (err) {
          console.warn("status of", b.id, err);
        }
      })
    );
    this.render(answer);
    const queued = answer.batches.some((b) => b.status === "queued");
    const warning = queued ? await workersWarning() : null;
    this.warning.hidden = !warning;
    this.warning.textContent = warning || "";
  }

  render({ batches, pagination }) {
    if (!batches.length) {
      replace(this.list, h("p", { class: "muted", text: "No batch yet. " }, h("a", { href: "#/new", text: "Start one from a CSV." })));
    } else {
      const rows = batches.map((b) => {
        const st = this.statuses.get(b.id) || { total: b.totalCalls };
        return h(
          "tr",
          { "data-batch": b.id },
          h("td", {}, h("a", { href: `#/batches/${encodeURIComponent(b.id)}`, text: b.id }), h("div", { class: "muted small", text: b.agentId })),
          h("td", {}, badge(st.status || b.status)),
          h("td", { class: "grow" }, progressBar({ ...st, total: st.total ?? b.totalCalls })),
          h("td", { class: "small" }, times(b, st))
        );
      });
      replace(
        this.list,
        h(
          "table",
          { class: "table batches" },
          h("thead", {}, h("tr", {}, h("th", { text: "Batch" }), h("th", { text: "Status" }), h("th", { text: "Progress" }), h("th", { text: "Times" }))),
          h("tbody", {}, rows)
        )
      );
    }
    replace(
      this.pager,
      pagination.hasPrev ? h("a", { href: `#/batches?page=${pagination.page - 1}`, text: "← Newer" }) : null,
      h("span", { class: "muted", text: `page ${pagination.page} of ${Math.max(1, pagination.totalPages)} · ${plural(pagination.total, "batch", "batches")}` }),
      pagination.hasNext ? h("a", { href: `#/batches?page=${pagination.page + 1}`, text: "Older →" }) : null
    );
  }
}

function times(b, st) {
  const lines = [h("div", {}, "created ", fmtTime(b.createdAt))];
  if (b.scheduledAt && b.scheduledAt > b.createdAt + 1000) lines.push(h("div", {}, "scheduled ", fmtTime(b.scheduledAt)));
  const started = st.startTime ?? b.startTime;
  if (started) lines.push(h("div", {}, "started ", fmtTime(started)));
  const done = st.completedTime ?? b.completedTime;
  if (done) lines.push(h("div", {}, "finished ", fmtTime(done)));
  return lines;
}
