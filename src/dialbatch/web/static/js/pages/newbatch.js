// A new batch from a CSV. The server validates the whole file before it creates anything
// and answers 400 with the problems by row and column: those are shown next to the file,
// with the options that would accept it, and nothing exists until the file is accepted.

import { ApiError, get, post } from "../api.js";
import { h, plural, replace } from "../dom.js";
import { banner, navigate } from "../nav.js";

export class NewBatchPage {
  mount(root) {
    this.file = h("input", { id: "file", name: "file", type: "file", accept: ".csv,.tsv,.txt,text/csv", required: true, onchange: () => this.clearProblems() });
    this.agent = h("select", { id: "agent", name: "agentId", required: true }, h("option", { value: "", text: "Loading agents…" }));
    this.scheduled = h("input", { id: "scheduledAt", name: "scheduledAt", type: "datetime-local" });
    this.cbEnabled = h("input", { id: "cb-enabled", type: "checkbox" });
    this.cbAttempts = h("input", { id: "cb-attempts", type: "number", min: 1, max: 10, value: 3 });
    this.cbGaps = h("input", { id: "cb-gaps", value: "4, 24", placeholder: "4, 24" });
    this.country = h("input", { id: "defaultCountry", name: "defaultCountry", maxlength: 2, size: 4, placeholder: "US", autocomplete: "off" });
    this.skipInvalid = h("input", { id: "skipInvalid", name: "skipInvalid", type: "checkbox" });
    this.dedupe = h("input", { id: "dedupe", name: "dedupe", type: "checkbox" });
    this.requireConsent = h("input", { id: "requireConsent", name: "requireConsent", type: "checkbox" });
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
            this.problems
          ),
          h(
            "div",
            {},
            h("label", { for: "agent", text: "Agent" }),
            this.agent,
            h("label", { for: "scheduledAt", text: "Start at (optional; your local time)" }),
            this.scheduled,
            h(
              "fieldset",
              { class: "options" },
              h("legend", { text: "Smart callbacks (optional)" }),
              h("div", { class: "check" }, this.cbEnabled, h("label", { for: "cb-enabled", text: "Call again when busy, no answer or voicemail" })),
              h("div", { class: "field" }, h("label", { for: "cb-attempts", text: "Dials at most" }), this.cbAttempts),
              h("div", { class: "field" }, h("label", { for: "cb-gaps", text: "Hours between dials" }), this.cbGaps)
            ),
            this.options,
            h(
              "fieldset",
              { class: "options" },
              h("legend", { text: "Consent (optional)" }),
              h("div", { class: "check" }, this.requireConsent, h("label", { for: "requireConsent" }, "Require consent on every row ", h("code", { text: "requireConsent" })), h("span", { class: "hint", text: "rows without consent_basis and consent_at are refused (the workspace may require it anyway)" }))
            )
          )
        ),
        this.error,
        h("div", { class: "row" }, this.submitButton, h("a", { href: "#/batches", text: "Back to batches" }))
      )
    );
    this.loadAgents();
  }

  async loadAgents() {
    try {
      const { agents } = await get("/v1/api/agents");
      replace(
        this.agent,
        agents.length ? null : h("option", { value: "", text: "No agent: create one with POST /v1/api/agents" }),
        agents.map((a) => h("option", { value: a.id, text: `${a.name} (${a.id}, ${a.provider})` }))
      );
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
    if (this.country.value.trim()) form.append("defaultCountry", this.country.value.trim().toUpperCase());
    if (this.skipInvalid.checked) form.append("skipInvalid", "true");
    if (this.dedupe.checked) form.append("dedupe", "true");
    if (this.requireConsent.checked) form.append("requireConsent", "true");
    return form;
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
