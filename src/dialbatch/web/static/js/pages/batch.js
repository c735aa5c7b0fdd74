// One batch: its counts, a chart of calls finished over time, the average duration, the
// recent calls, the call table (status filter and pages of the API), a call's detail (with
// its dials and the gate's last word), the actions this server has, why it is paused, its
// retry links and the rules it runs under. Kept current by the event stream (or polling).

import { ApiError, get, has, request, serverFeatures } from "../api.js";
import { badge, fmtDuration, fmtTime, h, plural, progressBar, replace } from "../dom.js";
import { cumulate, finishedChart } from "../chart.js";
import { WORKSPACE_CHANGED, WORKSPACE_SEEN } from "../emergency.js";
import { coalesce, watch } from "../live.js";
import { banner, navigate } from "../nav.js";
import { describeValue, summarizeWindow, workersWarning } from "./common.js";

const FILTERS = ["all", "waiting", "active", "completed", "failed", "cancelled"];
const PAGE_SIZE = 20;
// Up to this many finished calls, the chart is drawn from each call's end time (listed 100
// a request); above it, from the progress counts sampled as updates arrive.
const EXACT_CHART_MAX = 2000;

export class BatchPage {
  mount(root, route) {
    this.id = route.batchId;
    this.base = `/v1/api/batch-calls/${encodeURIComponent(this.id)}`;
    this.readRoute(route);
    this.status = null;
    this.finishes = new Map(); // jobId -> {t, ok}
    this.samples = []; // [{t, completed, failed}] when the batch is too large to list
    this.finishesLoadedAt = 0;
    this.loadingFinishes = false;

    this.title = h("h1", { text: this.id });
    this.badge = h("span");
    this.meta = h("div", { class: "meta muted" });
    this.actions = h("div", { class: "actions", id: "actions" });
    this.flash = h("div", { id: "created" });
    this.warning = h("p", { class: "warn", hidden: true });
    this.pauseNote = h("div", { class: "pause-note", id: "pause-note", role: "status", hidden: true });
    this.links = h("p", { class: "meta", id: "batch-links", hidden: true });
    this.rules = h("dl", { class: "fields rules", id: "batch-rules", hidden: true });
    this.progress = h("div", { id: "progress" });
    this.stats = h("dl", { class: "stats", id: "stats" });
    this.chart = h("div", { id: "chart" });
    this.recent = h("div", { id: "recent" });
    this.filterSelect = h(
      "select",
      { id: "status-filter", onchange: () => this.go({ status: this.filterSelect.value, page: 1 }) },
      FILTERS.map((f) => h("option", { value: f, text: f }))
    );
    this.table = h("div", { id: "calls" });
    this.pager = h("div", { class: "pager", id: "calls-pager" });
    this.detail = h("aside", { id: "call-detail", class: "card detail", hidden: true });

    root.append(
      h(
        "section",
        { class: "card" },
        h("div", { class: "row" }, this.title, this.badge, h("span", { class: "spacer" }), this.actions),
        this.meta,
        this.links,
        this.pauseNote,
        this.flash,
        this.warning,
        this.progress,
        this.stats,
        this.rules
      ),
      h(
        "div",
        { class: "two" },
        h("section", { class: "card" }, h("h2", { text: "Calls finished over time" }), this.chart),
        h("section", { class: "card" }, h("h2", { text: "Recent calls" }), this.recent)
      ),
      this.detail,
      h(
        "section",
        { class: "card" },
        h("div", { class: "row" }, h("h2", { text: "Calls" }), h("span", { class: "spacer" }), h("label", { for: "status-filter", text: "Status " }), this.filterSelect),
        this.table,
        this.pager
      )
    );
    this.showCreated();
    this.refresh = coalesce(() => this.load());
    this.onWorkspace = () => ((this.batchStale = true), this.refresh());
    window.addEventListener(WORKSPACE_CHANGED, this.onWorkspace);
    this.stop = watch(`${this.base}/events`, (event) => {
      if (event && event.type === "snapshot" && event.data && "isComplete" in event.data) this.applyStatus(event.data);
      this.refresh();
    });
    this.refresh();
  }

  readRoute(route) {
    const status = route.query.get("status");
    this.filter = FILTERS.includes(status) ? status : "all";
    this.pageNo = Math.max(1, Number(route.query.get("page")) || 1);
    this.jobId = route.jobId;
  }

  update(route) {
    this.readRoute(route);
    this.refresh();
  }

  unmount() {
    this.closed = true;
    this.stop();
    window.removeEventListener(WORKSPACE_CHANGED, this.onWorkspace);
    if (this.settleTimer) clearTimeout(this.settleTimer);
  }

  /** Go to another filter, page or call of this batch (it is a link, so Back works). */
  go({ status = this.filter, page = this.pageNo, jobId = null } = {}) {
    if (this.closed) return; // an answer that arrived after the user left: stay where they are
    const qs = new URLSearchParams();
    if (status !== "all") qs.set("status", status);
    if (page > 1) qs.set("page", String(page));
    const call = jobId ? `/calls/${encodeURIComponent(jobId)}` : "";
    const q = qs.toString();
    navigate(`#/batches/${encodeURIComponent(this.id)}${call}${q ? `?${q}` : ""}`);
  }

  async load() {
    if (!this.batch || this.batchStale) {
      this.batchStale = false;
      try {
        this.batch = await get(this.base);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          this.stop();
          replace(this.progress, h("p", { class: "error", text: `No batch ${this.id} in this workspace.` }));
          return;
        }
        throw err;
      }
      this.features = await serverFeatures();
      this.renderBatchInfo();
    }
    const status = await get(`${this.base}/status`);
    // The batch's own fields (links, gate summary) change with its status, or all the time
    // while it has a gate summary: read them again then.
    if (this.status && (status.status !== this.status.status || (this.batch && this.batch.gate && !status.isComplete))) {
      this.batchStale = true;
    }
    this.applyStatus(status);
    await this.loadCalls();
    await Promise.all([this.loadDetail(), this.loadFinishes()]);
    this.renderChart();
    if (this.status.status === "queued" && this.status.startTime == null) {
      const warning = await workersWarning();
      this.warning.hidden = !warning;
      this.warning.textContent = warning || "";
    } else this.warning.hidden = true;
  }

  applyStatus(status) {
    this.status = status;
    // A cancel flips the batch's status before it cancels the waiting calls, and the
    // `batch.cancelled` event comes with the flip: look again until the calls have followed.
    if (status.status === "cancelled" && status.waiting > 0 && !this.settleTimer) {
      this.settleTimer = setTimeout(() => {
        this.settleTimer = null;
        this.refresh();
      }, 1000);
    }
    for (const r of status.recent_calls || []) {
      const t = r.completedAt ?? r.failedAt;
      if (t) this.finishes.set(r.jobId, { t, ok: r.status === "completed" });
    }
    if (status.completed + status.failed > EXACT_CHART_MAX) {
      const last = this.samples[this.samples.length - 1];
      const t = status.lastCompletedTime && status.isComplete ? status.completedTime : Date.now();
      if (!last && status.startTime) this.samples.push({ t: status.startTime, completed: 0, failed: 0 });
      if (!last || last.completed !== status.completed || last.failed !== status.failed) {
        this.samples.push({ t, completed: status.completed, failed: status.failed });
      }
    }
    this.renderStatus();
    this.renderChart(); // the recent calls just merged: the chart agrees with the counts
    if ("workspacePaused" in status) window.dispatchEvent(new CustomEvent(WORKSPACE_SEEN, { detail: { paused: status.workspacePaused } }));
    if (this.batchStale) this.reloadBatch();
  }

  /** GET the batch again (its links, window, gate summary), then show it. */
  async reloadBatch() {
    if (this.reloading) return;
    this.reloading = true;
    this.batchStale = false;
    try {
      this.batch = await get(this.base);
      this.renderBatchInfo();
    } catch (err) {
      console.warn("batch", err);
    } finally {
      this.reloading = false;
    }
  }

  /** Why it is paused, with the way out; shown above the counts, where it is seen. */
  renderPause() {
    const st = this.status;
    const paused = st.status === "paused";
    this.pauseNote.hidden = !paused;
    this.pauseNote.dataset.reason = st.pauseReason ? "automatic" : st.workspacePaused ? "workspace" : "manual";
    if (!paused) return;
    const actions = (this.features && this.features.batchActions) || {};
    const since = st.pausedAt ? ` since ${fmtTime(st.pausedAt)}` : "";
    const parts = [];
    if (st.pauseReason) {
      parts.push(h("b", { text: `Automatic stop${since}: ` }), h("span", { id: "pause-reason", text: st.pauseReason }), h("div", { class: "small", text: "It stopped itself on a spike of failed dials, before burning its list. Check the provider, then resume by hand." }));
    } else if (st.workspacePaused) {
      parts.push(h("b", { text: `Paused with the whole workspace${since}` }), h("div", { class: "small", text: "The workspace's emergency stop holds every batch; “Resume dialing…” at the top lifts it." }));
    } else {
      parts.push(h("b", { text: `Paused by hand${since}` }), h("div", { class: "small", text: "No new call is dialed; live calls run to their end." }));
    }
    const key = `${st.pauseReason || ""}|${st.workspacePaused}|${st.pausedAt}|${Boolean(actions.resume)}`;
    if (key === this.pauseShown) return;
    this.pauseShown = key;
    let resume = null;
    if (actions.resume && !st.workspacePaused) {
      resume = this.actionButton("resume", "Resume batch");
      resume.id = "note-resume";
      resume.classList.add("primary");
      delete resume.dataset.action; // the actions row has its own; one per place
    }
    replace(this.pauseNote, h("div", { class: "grow" }, parts), resume);
  }

  /** Links to the batch it retries and to its retries, and the rules it runs under. */
  renderBatchInfo() {
    const b = this.batch || {};
    const link = (id) => h("a", { href: `#/batches/${encodeURIComponent(id)}`, "data-batch-link": id, text: id });
    const retries = b.retryBatchIds || [];
    const links = [];
    if (b.parentBatchId) links.push(h("span", { id: "parent-batch" }, "retry of ", link(b.parentBatchId)));
    if (retries.length) {
      links.push(h("span", { id: "retry-batches" }, links.length ? " · " : "", `retried in `, retries.flatMap((id, i) => (i ? [", ", link(id)] : [link(id)]))));
    }
    this.links.hidden = !links.length;
    replace(this.links, links);

    const rows = [];
    if ("callingWindow" in b) rows.push(["Calling window", h("span", { id: "calling-window", text: b.callingWindow ? summarizeWindow(b.callingWindow) : "none: calls at any hour" })]);
    if (b.complianceProfile !== undefined && b.complianceProfile !== null) rows.push(["Compliance profile", h("span", { id: "compliance-profile", text: describeValue(b.complianceProfile) })]);
    if ("maxConcurrency" in b || "priority" in b) {
      const share = [b.maxConcurrency ? `at most ${b.maxConcurrency} calls live at once` : "the workspace's cap", `priority ${b.priority ?? 0}`];
      const running = !["completed", "cancelled", "failed"].includes(b.status);
      const editable = running && has(this.features, "/v1/api/batch-calls/{batchId}", "patch");
      // The same form across re-renders while the values stand, and while the user has
      // edits not yet sent: a refresh must not wipe what the user is typing.
      const sig = `${b.maxConcurrency}|${b.priority}`;
      if (editable && (!this.shareForm || (this.shareSig !== sig && !this.shareEdited))) [this.shareForm, this.shareSig] = [this.shareEditor(b), sig];
      rows.push(["Share of the workspace", h("span", {}, h("span", { id: "batch-share", text: share.join(" · ") }), editable ? this.shareForm : null)]);
    }
    if (b.failureStop) rows.push(["Automatic stop", h("span", { id: "failure-stop", text: describeFailureStop(b.failureStop) })]);
    if (b.gate && typeof b.gate === "object") rows.push(["Held back by the gate", gateSummary(b.gate)]);
    this.rules.hidden = !rows.length;
    replace(this.rules, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
  }

  /** Change a running batch's share (PATCH /v1/api/batch-calls/{id}): the server checks
   * the values and names the field it refuses. */
  shareEditor(b) {
    const cap = h("input", { id: "share-max-concurrency", type: "number", min: 1, step: 1, size: 5, value: b.maxConcurrency ?? "", placeholder: "none" });
    const prio = h("input", { id: "share-priority", type: "number", min: -100, max: 100, step: 1, size: 5, value: b.priority ?? 0 });
    const form = h(
      "form",
      {
        class: "inline",
        id: "share-form",
        novalidate: true,
        oninput: () => {
          this.shareEdited = true;
        },
        onsubmit: async (e) => {
          e.preventDefault();
          this.shareEdited = false;
          const body = { maxConcurrency: cap.value.trim() === "" ? null : Number(cap.value), priority: Number(prio.value || 0) };
          try {
            const answer = await request(this.base, { method: "PATCH", json: body });
            banner(answer.message || "Share changed.", "info");
          } catch (err) {
            banner(`Not changed: ${err.message}`, "error");
          }
          this.batchStale = true;
          this.refresh();
        },
      },
      " ",
      h("label", { for: "share-max-concurrency", class: "small", text: "at most" }),
      cap,
      h("label", { for: "share-priority", class: "small", text: "priority" }),
      prio,
      h("button", { type: "submit", id: "share-save", text: "Change" })
    );
    return form;
  }

  renderStatus() {
    const st = this.status;
    const b = this.batch || {};
    replace(this.badge, badge(st.status));
    this.badge.id = "batch-status";
    this.badge.dataset.status = st.status;
    replace(
      this.meta,
      b.agentId ? `agent ${b.agentId} · ` : "",
      b.createdAt ? `created ${fmtTime(b.createdAt)}` : "",
      b.scheduledAt && b.createdAt && b.scheduledAt > b.createdAt + 1000 ? ` · scheduled ${fmtTime(b.scheduledAt)}` : "",
      st.startTime ? ` · started ${fmtTime(st.startTime)}` : "",
      st.completedTime ? ` · finished ${fmtTime(st.completedTime)}` : ""
    );
    replace(this.progress, progressBar(st));
    const finished = st.completed + st.failed;
    const items = [
      ["Calls", st.total.toLocaleString()],
      ["Completed", st.completed.toLocaleString()],
      ["Failed", st.failed.toLocaleString()],
      ["Average duration", st.completed ? fmtDuration(st.averageCallDuration) : "—"],
    ];
    if (!st.isComplete && st.startTime && finished > 0) {
      const minutes = Math.max(1 / 60, (Date.now() - st.startTime) / 60000);
      const rate = finished / minutes;
      const left = (st.waiting + st.active) / rate;
      items.push(["Rate", `${rate.toFixed(1)} calls/min`], ["Time left", `about ${fmtDuration(left * 60)}`]);
    }
    if (b.retryPolicy) items.push(["Retries", retrySummary(b.retryPolicy)]);
    replace(this.stats, items.map(([k, v]) => [h("dt", { text: k }), h("dd", { "data-stat": k, text: v })]));
    this.renderRecent();
    this.renderActions();
    this.renderPause();
  }

  renderRecent() {
    const recent = this.status.recent_calls || [];
    if (!recent.length) {
      replace(this.recent, h("p", { class: "muted", text: "No call has finished yet." }));
      return;
    }
    replace(
      this.recent,
      h(
        "ul",
        { class: "recent" },
        recent.map((r) =>
          h(
            "li",
            {},
            badge(r.status),
            " ",
            h("a", { href: this.callHref(r.jobId), text: r.phone_number }),
            h("span", { class: "muted", text: ` ${fmtTime(r.completedAt ?? r.failedAt)} · ${r.status === "completed" ? fmtDuration(r.duration) : r.error || ""}` })
          )
        )
      )
    );
  }

  callHref(jobId) {
    const qs = new URLSearchParams();
    if (this.filter !== "all") qs.set("status", this.filter);
    if (this.pageNo > 1) qs.set("page", String(this.pageNo));
    const q = qs.toString();
    return `#/batches/${encodeURIComponent(this.id)}/calls/${encodeURIComponent(jobId)}${q ? `?${q}` : ""}`;
  }

  renderActions() {
    const st = this.status;
    const actions = (this.features && this.features.batchActions) || {};
    const live = !st.isComplete && st.status !== "cancelled";
    const buttons = [];
    if (actions.pause && live && st.status !== "paused") buttons.push(this.actionButton("pause", "Pause"));
    if (actions.resume && st.status === "paused") buttons.push(this.actionButton("resume", "Resume"));
    if (actions["retry-failed"] && st.failed > 0) buttons.push(this.actionButton("retry-failed", "Retry failed calls"));
    if (live || (st.status === "cancelled" && st.active > 0)) buttons.push(this.cancelControl());
    // Rebuild only when the set of actions changes: an update must not reset a half-made
    // choice (the hang-up box) or pull a button from under the pointer.
    const signature = buttons.map((b) => b.dataset.action).join(" ");
    if (signature === this.actionsShown) return;
    this.actionsShown = signature;
    replace(this.actions, buttons);
  }

  /** Show the actions again from scratch (after a click changed what they should be). */
  resetActions() {
    this.actionsShown = null;
    this.renderActions();
  }

  actionButton(action, label) {
    return h("button", {
      type: "button",
      "data-action": action,
      text: label,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          const method = this.features.batchActions[action].toUpperCase();
          const answer = await request(`${this.base}/${action}`, { method });
          banner((answer && answer.message) || `${label}: done`, "info");
        } catch (err) {
          banner(`${label}: ${err.message}`, "error");
        }
        this.batchStale = true; // a retry adds a link; a pause or resume changes the note
        this.pauseShown = null;
        this.resetActions();
        this.refresh();
      },
    });
  }

  cancelControl() {
    if (!this.confirming) {
      return h("button", { type: "button", class: "danger", "data-action": "cancel", text: "Cancel batch…", onclick: () => ((this.confirming = true), this.resetActions()) });
    }
    const hangup = h("input", { type: "checkbox", id: "hangup-active" });
    return h(
      "span",
      { class: "confirm", "data-action": "confirming" },
      hangup,
      h("label", { for: "hangup-active", text: "also hang up live calls" }),
      h("button", {
        type: "button",
        class: "danger",
        "data-action": "confirm-cancel",
        text: "Cancel batch",
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            const answer = await request(this.base, { method: "DELETE", query: hangup.checked ? { hangupActive: "true" } : {} });
            banner(answer.message, "info");
          } catch (err) {
            banner(`Cancel: ${err.message}`, "error");
          }
          this.confirming = false;
          this.resetActions();
          this.refresh();
        },
      }),
      h("button", { type: "button", text: "Keep it", onclick: () => ((this.confirming = false), this.resetActions()) })
    );
  }

  showCreated() {
    const key = `dialbatch.created.${this.id}`;
    const raw = sessionStorage.getItem(key);
    if (!raw) return;
    sessionStorage.removeItem(key);
    const created = JSON.parse(raw);
    const parts = [h("p", { class: "ok", text: created.message })];
    if (created.skipped) {
      parts.push(
        h("p", { text: `${plural(created.skipped, "row")} left out (${created.duplicatesRemoved || 0} repeated):` }),
        h(
          "table",
          { class: "table small" },
          h("thead", {}, h("tr", {}, h("th", { text: "Row" }), h("th", { text: "Column" }), h("th", { text: "Reason" }), h("th", { text: "Value" }))),
          h("tbody", {}, (created.skippedRows || []).map((p) => h("tr", {}, h("td", { text: String(p.row) }), h("td", { text: p.column || "" }), h("td", { text: p.reason }), h("td", { text: p.value ?? "" }))))
        )
      );
    }
    replace(this.flash, h("div", { class: "notice" }, parts));
  }

  async loadCalls() {
    this.filterSelect.value = this.filter;
    let answer;
    try {
      answer = await get(`${this.base}/calls`, { status: this.filter === "all" ? null : this.filter, page: this.pageNo, limit: PAGE_SIZE });
    } catch (err) {
      // A filtered listing can shrink under a page (calls leave "waiting"): back to page 1.
      if (err instanceof ApiError && err.status === 400 && this.pageNo > 1) {
        this.go({ page: 1 });
        return;
      }
      throw err;
    }
    const { calls, pagination } = answer;
    this.listed = new Map(calls.map((c) => [c.jobId, c]));
    if (!calls.length && pagination.page > 1 && pagination.totalPages >= 1) {
      this.go({ page: pagination.totalPages });
      return;
    }
    if (!calls.length) {
      replace(this.table, h("p", { class: "muted", text: this.filter === "all" ? "No calls." : `No ${this.filter} calls.` }));
    } else {
      replace(
        this.table,
        h(
          "table",
          { class: "table calls" },
          h("thead", {}, h("tr", {}, ["Call", "Phone", "Status", "Started", "Ended", "Duration / error"].map((t) => h("th", { text: t })))),
          h(
            "tbody",
            {},
            calls.map((c) =>
              h(
                "tr",
                { "data-job": c.jobId, class: c.jobId === this.jobId ? "selected" : null, onclick: () => this.go({ jobId: c.jobId }) },
                h("td", {}, h("a", { href: this.callHref(c.jobId), text: c.jobId })),
                h("td", { text: c.phone_number }),
                h("td", {}, badge(c.status)),
                h("td", { text: fmtTime(c.startTime) }),
                h("td", { text: fmtTime(c.endTime) }),
                h("td", { text: c.status === "completed" ? fmtDuration(c.duration) : c.error || "" })
              )
            )
          )
        )
      );
    }
    replace(
      this.pager,
      pagination.hasPrev ? h("button", { type: "button", "data-page": "prev", text: "← Previous", onclick: () => this.go({ page: pagination.page - 1 }) }) : null,
      h("span", { class: "muted", text: `page ${pagination.page} of ${Math.max(1, pagination.totalPages)} · ${plural(pagination.total, this.filter === "all" ? "call" : `${this.filter} call`)}` }),
      pagination.hasNext ? h("button", { type: "button", "data-page": "next", text: "Next →", onclick: () => this.go({ page: pagination.page + 1 }) }) : null
    );
  }

  async loadDetail() {
    if (!this.jobId) {
      this.detail.hidden = true;
      this.shownJob = null;
      return;
    }
    // A finished call does not change: fetch it once.
    if (this.shownJob === this.jobId && this.shownFinal) return;
    let call;
    try {
      call = await get(`${this.base}/calls/${encodeURIComponent(this.jobId)}`);
    } catch (err) {
      this.detail.hidden = false;
      replace(this.detail, h("p", { class: "error", text: err.status === 404 ? `No call ${this.jobId} in this batch.` : err.message }), this.closeButton());
      return;
    }
    const opened = this.shownJob !== this.jobId;
    this.shownJob = this.jobId;
    this.shownFinal = ["completed", "failed", "cancelled"].includes(call.status);
    this.detail.hidden = false;
    const listed = this.listed && this.listed.get(call.jobId);
    replace(this.detail, renderCall(call, listed && listed.metadata), this.closeButton());
    if (opened) this.detail.scrollIntoView({ block: "nearest" });
  }

  closeButton() {
    return h("button", { type: "button", id: "close-detail", text: "Close", onclick: () => this.go({}) });
  }

  async loadFinishes() {
    const st = this.status;
    const finished = st.completed + st.failed;
    if (finished > EXACT_CHART_MAX || this.finishes.size >= finished || this.loadingFinishes) return;
    // Missed some (more than the 10 recent calls finished between two updates): list them.
    if (Date.now() - this.finishesLoadedAt < 2000 && !st.isComplete) return;
    this.loadingFinishes = true;
    try {
      for (const status of ["completed", "failed"]) {
        for (let page = 1; ; page += 1) {
          const { calls, pagination } = await get(`${this.base}/calls`, { status, page, limit: 100 });
          for (const c of calls) if (c.endTime) this.finishes.set(c.jobId, { t: c.endTime, ok: status === "completed" });
          if (!pagination.hasNext) break;
        }
      }
    } catch (err) {
      console.warn("chart data", err);
    } finally {
      this.loadingFinishes = false;
      this.finishesLoadedAt = Date.now();
    }
  }

  renderChart() {
    const st = this.status;
    const exact = st.completed + st.failed <= EXACT_CHART_MAX;
    const points = exact ? cumulate([...this.finishes.values()]) : this.samples;
    const from = st.startTime ?? (points[0] && points[0].t);
    const to = st.isComplete ? st.completedTime || (points.length && points[points.length - 1].t) : Date.now();
    const note = exact ? `${plural(points.length ? points[points.length - 1].completed + points[points.length - 1].failed : 0, "call")} finished` : "sampled from live progress";
    replace(
      this.chart,
      finishedChart(points, { from, to, note }),
      h("p", { class: "legend" }, h("span", { class: "key completed" }, h("i"), "completed"), " ", h("span", { class: "key failed" }, h("i"), "failed"))
    );
  }
}

/** A call's detail; `metadata` (its CSV columns, from the listing) when it has no result. */
function renderCall(call, metadata) {
  const rows = [
    ["Status", badge(call.status)],
    ["Phone", call.phone_number],
    ["Attempts", String(call.attempts ?? "—")],
    ["Started", fmtTime(call.startTime)],
    ["Ended", fmtTime(call.endTime)],
  ];
  if (call.duration !== undefined) rows.push(["Duration", fmtDuration(call.duration)]);
  if (call.error) rows.push(["Error", call.error]);
  if (call.gateDecision) rows.push(["Gate", gateLine(call.gateDecision)]);
  const result = call.result || null;
  const parts = [
    h("h2", { text: `Call ${call.jobId}` }),
    h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
  ];
  if (Array.isArray(call.attemptHistory)) parts.push(h("h3", { text: "Dials" }), attemptTable(call.attemptHistory, call.gateHistory || []));
  if (result) {
    const fields = [];
    if (result.outcome) fields.push(["Outcome", result.outcome]);
    if (result.callId) fields.push(["Provider call id", result.callId]);
    if (result.summary) fields.push(["Summary", result.summary]);
    if (result.recordingUrl) fields.push(["Recording", result.recordingUrl]);
    parts.push(h("h3", { text: "Result" }), h("dl", { class: "fields", id: "result-fields" }, fields.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
    if (result.data && Object.keys(result.data).length) parts.push(h("h3", { text: "Extracted data" }), keyValues(result.data, "result-data"));
    parts.push(h("h3", { text: "Transcript" }), result.transcript ? h("pre", { class: "transcript", id: "transcript", text: result.transcript }) : h("p", { class: "muted", text: "No transcript was reported for this call." }));
    if (result.metadata && Object.keys(result.metadata).length) parts.push(h("h3", { text: "CSV columns" }), keyValues(result.metadata, "call-metadata"));
  } else {
    parts.push(h("p", { class: "muted", id: "no-result", text: call.status === "completed" ? "No result was reported for this call." : "A result (transcript, outcome) comes with a completed call; this one has none." }));
    if (metadata && Object.keys(metadata).length) parts.push(h("h3", { text: "CSV columns" }), keyValues(metadata, "call-metadata"));
  }
  return h("div", {}, parts);
}

function keyValues(obj, id) {
  return h(
    "table",
    { class: "table small", id },
    h("tbody", {}, Object.entries(obj).map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: typeof v === "string" ? v : JSON.stringify(v) }))))
  );
}

/** Every dial of a call, first first (the API's `attemptHistory`), with the gate's holds
 * where they fell between the dials (the API's `gateHistory`, each with `afterDials`). */
function attemptTable(history, gateHistory) {
  if (!history.length && !gateHistory.length) return h("p", { class: "muted", id: "attempt-history", text: "Not dialed yet." });
  const outcome = (a) => (a.outcome ? badge(a.outcome) : h("span", { class: "muted", text: a.endTime ? "unknown" : "live" }));
  const holds = (after) =>
    gateHistory
      .filter((d) => (after === null ? d.afterDials >= history.length : d.afterDials === after))
      .map((d) => h("tr", { class: "gate-row", "data-gate-kind": d.kind, "data-after-dials": String(d.afterDials) }, h("td", { text: "⏸" }), h("td", { colspan: 6 }, gateWords(d))));
  const rows = [];
  history.forEach((a, i) => {
    rows.push(...holds(i));
    rows.push(
      h(
        "tr",
        { "data-attempt": String(a.attempt) },
        h("td", { text: String(a.attempt) }),
        h("td", { text: fmtTime(a.startTime) }),
        h("td", { text: fmtTime(a.endTime) }),
        h("td", {}, outcome(a)),
        h("td", { text: a.duration === null || a.duration === undefined ? "—" : fmtDuration(a.duration) }),
        h("td", { title: [a.provider, a.providerCallId].filter(Boolean).join(" "), text: a.providerCode ?? "—" }),
        h("td", { text: a.fromNumber || "—" })
      )
    );
  });
  rows.push(...holds(null));
  return h(
    "table",
    { class: "table small", id: "attempt-history" },
    h("thead", {}, h("tr", {}, ["#", "Started", "Ended", "Outcome", "Duration", "Provider code", "Caller number"].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows)
  );
}

/** The gate's last decision on a call, as one line: why it was held back or refused. */
function gateLine(decision) {
  return h("span", { id: "gate-decision", "data-kind": decision.kind }, gateWords(decision));
}

/** A decision of the gate in words: what it did, its message, rule, until and when. */
function gateWords(decision) {
  const words = { capped: "Held by a frequency cap", suppressed: "Refused: on the do-not-call list", window: "Held until its calling window opens", outside_window: "Held until its calling window opens", no_zone: "Refused: time zone unknown", consent: "Refused: no consent recorded" };
  const head = words[decision.kind] || `Gate: ${decision.kind}`;
  const bits = [decision.message];
  if (decision.rule) bits.push(`rule ${decision.rule}`);
  if (decision.until) bits.push(`until ${fmtTime(decision.until)}`);
  if (decision.at) bits.push(`decided ${fmtTime(decision.at)}`);
  return [h("b", { text: head }), ` · ${bits.filter(Boolean).join(" · ")}`];
}

/** The batch's `gate` summary, whatever its keys: each a count of calls held back. */
function gateSummary(gate) {
  const entries = Object.entries(gate);
  if (!entries.length) return h("span", { id: "gate-summary", class: "muted", text: "nothing held back" });
  return h(
    "span",
    { id: "gate-summary" },
    entries.flatMap(([k, v], i) => [i ? " · " : "", h("span", { "data-gate": k }, `${k} `, h("b", { text: describeValue(v) }))])
  );
}

function describeFailureStop(rule) {
  if (!rule.enabled) return "off";
  return `pauses when ${Math.round(rule.failedShare * 100)} % of the last ${rule.lastDials} dials failed within ${fmtDuration(rule.withinSeconds)}`;
}

/** The batch's retry rule per outcome in a few words: which outcomes are dialed again. */
function retrySummary(policy) {
  const retried = Object.entries(policy)
    .filter(([, rule]) => rule.retry)
    .map(([outcome, rule]) => `${outcome} up to ${rule.maxDials} dials`);
  return retried.length ? retried.join("; ") : "none";
}
