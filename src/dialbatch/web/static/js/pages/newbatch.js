// A new batch from a CSV. The server validates the whole file before it creates anything
// and answers 400 with the problems by row and column: those are shown next to the file,
// with the options that would accept it, and nothing exists until the file is accepted.
// Where the server has the validate endpoint, the page asks it as soon as the file and the
// options are chosen, and shows its counts, time zones and finish estimate before creating.
// An optional calling window is built from simple controls into the API's `callingWindow`.

import { ApiError, get, has, post, serverFeatures } from "../api.js";
import { fmtDuration, fmtTime, h, plural, replace } from "../dom.js";
import { banner, navigate } from "../nav.js";
import { WEEKDAYS } from "./common.js";

const PREVIEW_DELAY_MS = 400;
const DAY_LABELS = { mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday", sat: "Saturday", sun: "Sunday" };
// Labels of the validate answer's counts; a count this list lacks is shown by its own name.
const COUNT_LABELS = {
  totalRows: "Rows",
  validRows: "Valid",
  invalidRows: "Invalid",
  duplicateRows: "Repeated",
  suppressedRows: "Suppressed",
  outsideWindowRows: "Outside window",
  callsToCreate: "Calls to create",
};
const NOT_COUNTS = new Set(["problemCount", "unknownTimeZone"]);

export class NewBatchPage {
  mount(root) {
    const changed = () => this.schedulePreview();
    this.file = h("input", { id: "file", name: "file", type: "file", accept: ".csv,.tsv,.txt,text/csv", required: true, onchange: () => (this.clearProblems(), changed()) });
    this.agent = h("select", { id: "agent", name: "agentId", required: true, onchange: () => (this.showPool(), changed()) }, h("option", { value: "", text: "Loading agents…" }));
    this.pool = h("p", { class: "hint", id: "agent-pool", hidden: true });
    this.scheduled = h("input", { id: "scheduledAt", name: "scheduledAt", type: "datetime-local" });
    this.cbEnabled = h("input", { id: "cb-enabled", type: "checkbox" });
    this.cbAttempts = h("input", { id: "cb-attempts", type: "number", min: 1, max: 10, value: 3 });
    this.cbGaps = h("input", { id: "cb-gaps", value: "4, 24", placeholder: "4, 24" });
    this.retryPolicy = h("textarea", { id: "retry-policy", rows: 3, placeholder: '{"busy": {"maxDials": 3, "gapsSeconds": [600, 3600]}, "voicemail": false}' });
    this.country = h("input", { id: "defaultCountry", name: "defaultCountry", maxlength: 2, size: 4, placeholder: "US", autocomplete: "off", onchange: changed });
    this.skipInvalid = h("input", { id: "skipInvalid", name: "skipInvalid", type: "checkbox", onchange: changed });
    this.dedupe = h("input", { id: "dedupe", name: "dedupe", type: "checkbox", onchange: changed });
    this.window = this.windowControls(changed);
    this.preview = h("div", { id: "preview", class: "preview", "aria-live": "polite", hidden: true });
    this.checkButton = h("button", { type: "button", id: "check", text: "Check the file", hidden: true, onclick: () => this.runPreview() });
    this.requireConsent = h("input", { id: "requireConsent", name: "requireConsent", type: "checkbox", onchange: changed });
    this.maxConcurrency = h("input", { id: "maxConcurrency", name: "maxConcurrency", type: "number", min: 1, step: 1, size: 6, placeholder: "workspace cap", onchange: changed });
    this.priority = h("input", { id: "priority", name: "priority", type: "number", min: -100, max: 100, step: 1, size: 6, placeholder: "0" });
    this.options = h(
      "fieldset",
      { id: "accept-options", class: "options" },
      h("legend", { text: "Options that accept more files" }),
      h("div", { class: "field" }, h("label", { for: "defaultCountry" }, "Default country ", h("code", { text: "defaultCountry" })), this.country, h("span", { class: "hint", text: "ISO code (US, GB…) for numbers written without + and country code" })),
      h("div", { class: "check" }, this.skipInvalid, h("label", { for: "skipInvalid" }, "Skip invalid rows ", h("code", { text: "skipInvalid" })), h("span", { class: "hint", text: "queue the good rows, leave the others out (they are listed)" })),
      h("div", { class: "check" }, this.dedupe, h("label", { for: "dedupe" }, "Drop repeated numbers ", h("code", { text: "dedupe" })), h("span", { class: "hint", text: "keep the first row of each number" }))
    );
    this.problems = h("div", { id: "problems", class: "problems", "aria-live": "polite" });
    this.error = h("p", { class: "error", id: "create-error", role: "alert", hidden: true });
    this.submitButton = h("button", { type: "submit", class: "primary", id: "create", text: "Create batch" });
    root.append(
      h(
        "form",
        { class: "card", id: "new-batch", onsubmit: (e) => this.submit(e) },
        h("h1", { text: "New batch" }),
        h(
          "div",
          { class: "two" },
          h(
            "div",
            {},
            h("label", { for: "file", text: "Contacts (CSV with a phone_number column)" }),
            this.file,
            this.preview,
            this.problems
          ),
          h(
            "div",
            {},
            h("label", { for: "agent", text: "Agent" }),
            this.agent,
            this.pool,
            h("label", { for: "scheduledAt", text: "Start at (optional; your local time)" }),
            this.scheduled,
            h(
              "fieldset",
              { class: "options" },
              h("legend", { text: "Smart callbacks (optional)" }),
              h("div", { class: "check" }, this.cbEnabled, h("label", { for: "cb-enabled", text: "Call again when busy, no answer or voicemail" })),
              h("div", { class: "field" }, h("label", { for: "cb-attempts", text: "Dials at most" }), this.cbAttempts),
              h("div", { class: "field" }, h("label", { for: "cb-gaps", text: "Hours between dials" }), this.cbGaps),
              h("label", { for: "retry-policy" }, "Retry policy per outcome (optional, JSON) ", h("code", { text: "retryPolicy" })),
              this.retryPolicy,
              h("span", { class: "hint", text: "busy, no-answer, voicemail, failed, provider-error: false or {maxDials, gapsSeconds}; wins over smart callbacks for the outcomes it names" })
            ),
            this.options,
            this.window.fieldset,
            h(
              "fieldset",
              { class: "options" },
              h("legend", { text: "Consent (optional)" }),
              h("div", { class: "check" }, this.requireConsent, h("label", { for: "requireConsent" }, "Require consent on every row ", h("code", { text: "requireConsent" })), h("span", { class: "hint", text: "rows without consent_basis and consent_at are refused (the workspace may require it anyway)" }))
            ),
            h(
              "fieldset",
              { class: "options", id: "share-options" },
              h("legend", { text: "Share of the workspace (optional)" }),
              h("div", { class: "field" }, h("label", { for: "maxConcurrency" }, "Calls live at once, at most ", h("code", { text: "maxConcurrency" })), this.maxConcurrency, h("span", { class: "hint", text: "leaves the rest of the workspace's cap to other batches and inbound work" })),
              h("div", { class: "field" }, h("label", { for: "priority" }, "Priority ", h("code", { text: "priority" })), this.priority, h("span", { class: "hint", text: "-100 to 100; higher batches are dialed first, equal ones share" }))
            )
          )
        ),
        this.error,
        h("div", { class: "row" }, this.checkButton, this.submitButton, h("a", { href: "#/batches", text: "Back to batches" }))
      )
    );
    this.loadAgents();
    this.previewSeq = 0;
    serverFeatures().then((feats) => {
      this.canValidate = has(feats, "/v1/api/batch-calls/validate", "post");
      this.checkButton.hidden = !this.canValidate;
    });
  }

  unmount() {
    this.closed = true;
    if (this.previewTimer) clearTimeout(this.previewTimer);
  }

  /** The calling window's controls: per weekday ranges, skip dates and the zone rule. */
  windowControls(changed) {
    const enabled = h("input", { id: "cw-enabled", type: "checkbox", onchange: () => ((body.hidden = !enabled.checked), changed()) });
    const days = {};
    const rows = WEEKDAYS.map((d) => {
      const weekday = !["sat", "sun"].includes(d);
      const on = h("input", { id: `cw-${d}`, type: "checkbox", checked: weekday, onchange: changed });
      const ranges = h("input", { id: `cw-${d}-ranges`, value: weekday ? "09:00-17:00" : "10:00-14:00", placeholder: "09:00-12:00, 13:00-17:00", onchange: changed });
      days[d] = { on, ranges };
      return h("div", { class: "day" }, on, h("label", { for: `cw-${d}`, text: DAY_LABELS[d] }), ranges);
    });
    const rule = h("select", { id: "cw-tz-rule", onchange: () => ((zone.hidden = rule.value !== "fixed"), changed()) }, h("option", { value: "recipient", text: "each recipient's own time (from the number)" }), h("option", { value: "fixed", text: "one fixed time zone" }));
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    const zone = h("input", { id: "cw-zone", list: "cw-zones", placeholder: "America/New_York", hidden: true, autocomplete: "off", onchange: changed });
    const skip = h("input", { id: "cw-skip", placeholder: "2026-12-25, 2027-01-01", onchange: changed });
    const body = h(
      "div",
      { hidden: true, id: "cw-body" },
      h("div", { class: "days" }, rows),
      h("span", { class: "hint", text: "Ranges as HH:MM-HH:MM, several separated by commas; an end before the start runs past midnight." }),
      h("label", { for: "cw-tz-rule", text: "Read in" }),
      rule,
      zone,
      h("datalist", { id: "cw-zones" }, zones.map((z) => h("option", { value: z }))),
      h("label", { for: "cw-skip", text: "Skip dates (holidays)" }),
      skip
    );
    const fieldset = h(
      "fieldset",
      { class: "options", id: "calling-window" },
      h("legend", { text: "Calling window (optional)" }),
      h("div", { class: "check" }, enabled, h("label", { for: "cw-enabled" }, "Call only within these hours ", h("code", { text: "callingWindow" }))),
      body
    );
    return { fieldset, enabled, days, rule, zone, skip };
  }

  /** The window as the API's `callingWindow` JSON, null when off, or a message to fix. */
  callingWindow() {
    const w = this.window;
    if (!w.enabled.checked) return null;
    const days = {};
    for (const d of WEEKDAYS) {
      if (!w.days[d].on.checked) continue;
      const ranges = [];
      for (const part of w.days[d].ranges.value.split(/[,;]+/).map((x) => x.trim()).filter(Boolean)) {
        const m = part.match(/^(\d{1,2}:\d{2})\s*(?:-|–|to)\s*(\d{1,2}:\d{2})$/);
        if (!m) return `${DAY_LABELS[d]}: “${part}” is not a range like 09:00-17:00.`;
        ranges.push([m[1].padStart(5, "0"), m[2].padStart(5, "0")]);
      }
      if (!ranges.length) return `${DAY_LABELS[d]}: give at least one range, or untick the day.`;
      days[d] = ranges;
    }
    if (!Object.keys(days).length) return "Calling window: tick at least one day.";
    const win = { timezone: "recipient", days };
    if (w.rule.value === "fixed") {
      if (!w.zone.value.trim()) return "Calling window: name the time zone (an IANA name such as America/New_York).";
      win.timezone = w.zone.value.trim();
    }
    const skips = w.skip.value.split(/[ ,;]+/).filter(Boolean);
    if (skips.length) win.skipDates = skips;
    return win;
  }

  /** The chosen agent's caller numbers (its pool), their own limits and the server's
   * warnings, when the server describes one agent (GET /v1/api/agents/{id}). */
  async showPool() {
    const id = this.agent.value;
    this.pool.hidden = true;
    if (!id || !has(await serverFeatures(), "/v1/api/agents/{agentId}", "get")) return;
    let agent;
    try {
      agent = await get(`/v1/api/agents/${encodeURIComponent(id)}`);
    } catch {
      return; // the select still works; the pool is a hint
    }
    if (id !== this.agent.value) return;
    const limits = agent.callerNumberLimits || {};
    const words = (n) => {
      const own = limits[n] || {};
      const bits = [own.callsPerSecond ? `${own.callsPerSecond}/s` : null, own.perDay ? `${own.perDay}/day` : null].filter(Boolean);
      return bits.length ? `${n} (${bits.join(", ")})` : n;
    };
    const numbers = agent.fromNumbers || [];
    replace(
      this.pool,
      numbers.length ? `Caller numbers: ${numbers.map(words).join(" · ")} (local number first, else rotation)` : "No caller numbers: the provider's default is shown.",
      (agent.warnings || []).map((w) => h("span", { class: "warn", "data-warning": "pool", text: ` ⚠ ${w}` }))
    );
    this.pool.hidden = false;
  }

  async loadAgents() {
    try {
      const { agents } = await get("/v1/api/agents");
      replace(
        this.agent,
        agents.length ? null : h("option", { value: "", text: "No agent: create one with POST /v1/api/agents" }),
        agents.map((a) => h("option", { value: a.id, text: `${a.name} (${a.id}, ${a.provider})` }))
      );
      this.showPool();
    } catch (err) {
      replace(this.agent, h("option", { value: "", text: `Agents could not be loaded: ${err.message}` }));
    }
  }

  clearProblems() {
    replace(this.problems);
    this.options.classList.remove("highlight");
    this.error.hidden = true;
  }

  /** The form as the API's multipart fields, or a message saying what to fix. */
  fields() {
    const form = new FormData();
    const file = this.file.files[0];
    if (!file) return "Choose a CSV file.";
    if (!this.agent.value) return "Choose an agent.";
    form.append("file", file, file.name);
    form.append("agentId", this.agent.value);
    if (this.scheduled.value) {
      const when = new Date(this.scheduled.value);
      if (Number.isNaN(when.getTime())) return "The start time is not a valid date.";
      form.append("scheduledAt", when.toISOString().replace(/\.\d{3}Z$/, "Z"));
    }
    if (this.cbEnabled.checked) {
      const hours = this.cbGaps.value.split(/[ ,;]+/).filter(Boolean).map(Number);
      if (!hours.length || hours.some((n) => !Number.isFinite(n) || n < 0)) return "Hours between dials: numbers separated by commas, e.g. 4, 24.";
      const config = { enabled: true, maxAttempts: Number(this.cbAttempts.value) || 1, gaps: hours.map((n) => ({ days: 0, hours: n })) };
      form.append("smartCallbackConfig", JSON.stringify(config));
    }
    const policy = this.retryPolicy.value.trim();
    if (policy) {
      try {
        JSON.parse(policy);
      } catch {
        return "Retry policy: not valid JSON.";
      }
      form.append("retryPolicy", policy);
    }
    if (this.country.value.trim()) form.append("defaultCountry", this.country.value.trim().toUpperCase());
    if (this.skipInvalid.checked) form.append("skipInvalid", "true");
    if (this.dedupe.checked) form.append("dedupe", "true");
    const win = this.callingWindow();
    if (typeof win === "string") return win;
    if (win) form.append("callingWindow", JSON.stringify(win));
    if (this.requireConsent.checked) form.append("requireConsent", "true");
    for (const [name, input] of [["maxConcurrency", this.maxConcurrency], ["priority", this.priority]]) {
      const raw = input.value.trim();
      if (raw === "") continue;
      // The server says what range it takes (400 naming the field); only the shape is ours.
      if (!/^-?\d+$/.test(raw)) return `${name}: a whole number, e.g. ${name === "priority" ? "10" : "5"}.`;
      form.append(name, raw);
    }
    return form;
  }

  /** Ask the validate endpoint again soon (the user is still choosing). */
  schedulePreview() {
    if (this.previewTimer) clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.runPreview(true), PREVIEW_DELAY_MS);
  }

  /** What the server would do with this form, creating nothing. `quiet`: say nothing of an
   * incomplete form (the user has not finished choosing). */
  async runPreview(quiet = false) {
    this.previewTimer = null;
    if (!this.canValidate || this.closed) return;
    const form = this.fields();
    if (typeof form === "string") {
      if (!quiet) this.showPreview(h("p", { class: "error", text: form }));
      else this.preview.hidden = true;
      return;
    }
    const seq = ++this.previewSeq;
    this.showPreview(h("p", { class: "muted", text: "Checking the file…" }));
    let answer;
    try {
      answer = await post("/v1/api/batch-calls/validate", { form });
    } catch (err) {
      if (seq !== this.previewSeq) return;
      const problems = err.body && err.body.problems;
      this.showPreview(
        h("p", { class: "error", id: "preview-message", text: `${err.message}${problems && problems.length ? ` (${plural(err.body.problemCount ?? problems.length, "problem")}, first at row ${problems[0].row ?? problems[0].index})` : ""}` })
      );
      return;
    }
    if (seq !== this.previewSeq || this.closed) return;
    this.showPreview(renderPreview(answer));
    this.options.classList.toggle("highlight", !answer.valid);
  }

  showPreview(...children) {
    this.preview.hidden = false;
    replace(this.preview, h("h3", { text: "Before creating" }), children);
  }

  async submit(event) {
    event.preventDefault();
    this.clearProblems();
    const form = this.fields();
    if (typeof form === "string") {
      this.showError(form);
      return;
    }
    this.submitButton.disabled = true;
    this.submitButton.textContent = "Checking the file…";
    try {
      const created = await post("/v1/api/batch-calls", { form });
      const skipped = created.skipped ? `; ${plural(created.skipped, "row")} left out` : "";
      banner(`Batch ${created.batchId} created with ${plural(created.totalCalls, "call")}${skipped}.`, "info");
      sessionStorage.setItem(`dialbatch.created.${created.batchId}`, JSON.stringify(created));
      navigate(`#/batches/${encodeURIComponent(created.batchId)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && err.body.error === "Validation failed") this.showProblems(err.body);
      else this.showError(err.message);
    } finally {
      this.submitButton.disabled = false;
      this.submitButton.textContent = "Create batch";
    }
  }

  showError(message) {
    this.error.hidden = false;
    this.error.textContent = message;
  }

  /** The server's 400: nothing was created; show each problem and what would accept it. */
  showProblems(body) {
    const problems = body.problems || [];
    const count = body.problemCount ?? problems.length;
    const hints = suggestions(problems, this);
    const parts = [
      h("p", { class: "error", role: "alert" }, h("b", { text: "The file was refused; nothing was created. " }), body.message || ""),
    ];
    if (problems.length) {
      parts.push(
        h(
          "table",
          { class: "table problems-table", id: "problems-table" },
          h("thead", {}, h("tr", {}, h("th", { text: "Row" }), h("th", { text: "Column" }), h("th", { text: "Reason" }), h("th", { text: "Value" }))),
          h(
            "tbody",
            {},
            problems.map((p) => h("tr", {}, h("td", { text: String(p.row) }), h("td", { text: p.column || "" }), h("td", { text: p.reason }), h("td", {}, h("code", { text: p.value ?? "" }))))
          )
        )
      );
      if (count > problems.length) parts.push(h("p", { class: "muted", text: `…and ${count - problems.length} more (${plural(count, "problem")} in all).` }));
    }
    if (hints.length) {
      parts.push(h("p", { text: "Any of these would accept the file, then create again:" }), h("div", { class: "fixes" }, hints));
      this.options.classList.add("highlight");
    }
    replace(this.problems, parts);
  }
}

/** Buttons that set the option that would accept the refused rows. */
function suggestions(problems, page) {
  if (!problems.length) return [];
  const reasons = problems.map((p) => p.reason || "").join("\n").toLowerCase();
  const out = [];
  const apply = (fn) => () => {
    fn();
    page.options.classList.add("highlight");
  };
  if (/country code|defaultcountry/.test(reasons)) {
    out.push(
      h("button", { type: "button", class: "fix", "data-fix": "defaultCountry", onclick: apply(() => page.country.focus()) }, "Set a default country (", h("code", { text: "defaultCountry" }), ")")
    );
  }
  if (/duplicate|repeated/.test(reasons)) {
    out.push(h("button", { type: "button", class: "fix", "data-fix": "dedupe", onclick: apply(() => (page.dedupe.checked = true)) }, "Drop repeated numbers (", h("code", { text: "dedupe" }), ")"));
  }
  out.push(h("button", { type: "button", class: "fix", "data-fix": "skipInvalid", onclick: apply(() => (page.skipInvalid.checked = true)) }, "Skip the rows listed (", h("code", { text: "skipInvalid" }), ")"));
  return out;
}

/** The validate endpoint's answer: counts, time zones and when the batch would finish. */
function renderPreview(answer) {
  const counts = Object.entries(answer).filter(([k, v]) => typeof v === "number" && !NOT_COUNTS.has(k));
  const label = (k) => COUNT_LABELS[k] || k.replace(/Rows$/, "").replace(/([A-Z])/g, " $1").toLowerCase();
  const parts = [
    h("p", { class: answer.valid ? "ok" : "warn", id: "preview-message", "data-valid": String(Boolean(answer.valid)), text: answer.message || "" }),
    h("dl", { class: "stats", id: "preview-counts" }, counts.map(([k, v]) => [h("dt", { text: label(k) }), h("dd", { "data-count": k, text: v.toLocaleString() })])),
  ];
  const zones = answer.timeZones || [];
  if (zones.length || answer.unknownTimeZone) {
    const shown = zones.slice(0, 6).map((z) => h("li", {}, h("b", { text: z.zones.join(" / ") }), ` ${plural(z.calls, "call")}`));
    if (zones.length > 6) shown.push(h("li", { class: "muted", text: `…and ${zones.length - 6} more` }));
    if (answer.unknownTimeZone) shown.push(h("li", { class: "warn", text: `${plural(answer.unknownTimeZone, "number")} with no known time zone` }));
    parts.push(h("div", { class: "small" }, "Time zones found:", h("ul", { id: "preview-zones", class: "zones" }, shown)));
  }
  const est = answer.estimate;
  if (est) {
    const from = est.callSecondsFrom === "history" ? `the agent's last ${plural(est.historyDials, "dial")}` : "a default, as the agent has not dialed yet";
    parts.push(
      h(
        "p",
        { class: "small", id: "preview-estimate" },
        h("b", { text: `Would finish about ${fmtTime(est.finishAt)}` }),
        ` (${fmtDuration(est.durationSeconds)} from ${fmtTime(est.startAt)}), at ${est.callsPerSecond} calls/s, limited by ${est.limitedBy}; calls of about ${fmtDuration(est.callSeconds)} from ${from}. Retries, other batches and calling windows can make it longer.`
      )
    );
  }
  const problems = answer.problems || [];
  if (problems.length) {
    const first = problems.slice(0, 5).map((p) => h("li", {}, `row ${p.row ?? p.index}: ${p.reason}`));
    if ((answer.problemCount ?? problems.length) > first.length) first.push(h("li", { class: "muted", text: `…${plural(answer.problemCount ?? problems.length, "problem")} in all` }));
    parts.push(h("ul", { class: "small", id: "preview-problems" }, first));
  }
  return parts;
}
