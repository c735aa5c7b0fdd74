// The workspace's do-not-call list (GET/POST/DELETE /v1/api/suppressions): the numbers
// newest first, a page at a time; add one number with a reason; import a CSV; remove one.
// The server normalises every number to E.164 and refuses invalid ones with their row.

import { ApiError, del, get, post } from "../api.js";
import { fmtTime, h, plural, replace } from "../dom.js";
import { banner, navigate } from "../nav.js";

const LIMIT = 20;

export class SuppressionsPage {
  mount(root, route) {
    this.page = Number(route.query.get("page")) || 1;
    this.number = h("input", { id: "dnc-number", name: "phoneNumber", required: true, placeholder: "+12025550123", autocomplete: "off" });
    this.reason = h("input", { id: "dnc-reason", name: "reason", maxlength: 200, placeholder: "asked not to be called" });
    this.country = h("input", { id: "dnc-country", name: "defaultCountry", maxlength: 2, placeholder: "US", autocomplete: "off" });
    this.file = h("input", { id: "dnc-file", type: "file", accept: ".csv,.txt,text/csv", required: true });
    this.importReason = h("input", { id: "dnc-import-reason", maxlength: 200, placeholder: "reason for rows without one" });
    this.addError = h("p", { class: "error", id: "dnc-add-error", role: "alert", hidden: true });
    this.importResult = h("div", { id: "dnc-import-result", "aria-live": "polite" });
    this.list = h("div", { id: "dnc-list" }, h("p", { class: "muted", text: "Loading…" }));
    this.pager = h("div", { class: "pager", id: "dnc-pager" });
    root.append(
      h(
        "section",
        { class: "card" },
        h("h1", { text: "Do not call" }),
        h(
          "p",
          { class: "muted" },
          "Numbers on this list are never dialed by any batch of the workspace: rows with them are refused at upload (or skipped with ",
          h("code", { text: "skipInvalid" }),
          "), and a call already queued to one ends ",
          h("code", { text: "Suppressed" }),
          " before its dial. Agents add the people who opt out during a call."
        ),
        h(
          "div",
          { class: "two" },
          h(
            "form",
            { id: "dnc-add", onsubmit: (e) => this.add(e) },
            h("h2", { text: "Add a number" }),
            h("label", { for: "dnc-number", text: "Phone number" }),
            this.number,
            h("label", { for: "dnc-reason", text: "Reason (optional)" }),
            this.reason,
            h("label", { for: "dnc-country", text: "Default country (for numbers without +)" }),
            this.country,
            this.addError,
            h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "dnc-add-button", text: "Add to the list" }))
          ),
          h(
            "form",
            { id: "dnc-import", onsubmit: (e) => this.importCsv(e) },
            h("h2", { text: "Import a CSV" }),
            h("label", { for: "dnc-file", text: "CSV with a phone_number column (and an optional reason column)" }),
            this.file,
            h("label", { for: "dnc-import-reason", text: "Reason (optional)" }),
            this.importReason,
            h("div", { class: "row" }, h("button", { type: "submit", id: "dnc-import-button", text: "Import" })),
            this.importResult
          )
        )
      ),
      h("section", { class: "card" }, h("h2", { text: "The list" }), this.list, this.pager)
    );
    this.load();
  }

  update(route) {
    this.page = Number(route.query.get("page")) || 1;
    this.load();
  }

  async load() {
    let answer;
    try {
      answer = await get("/v1/api/suppressions", { page: this.page, limit: LIMIT });
    } catch (err) {
      replace(this.list, h("p", { class: "error", text: `The list could not be read: ${err.message}` }));
      return;
    }
    const { suppressions, pagination } = answer;
    if (!suppressions.length && pagination.page > 1 && pagination.totalPages >= 1) {
      navigate(`#/dnc?page=${pagination.totalPages}`);
      return;
    }
    if (!suppressions.length) {
      replace(this.list, h("p", { class: "muted", id: "dnc-empty", text: "No number is on the list." }));
    } else {
      replace(
        this.list,
        h(
          "table",
          { class: "table", id: "dnc-table" },
          h("thead", {}, h("tr", {}, ["Number", "Reason", "Source", "Added", "Expires", ""].map((t) => h("th", { text: t })))),
          h(
            "tbody",
            {},
            suppressions.map((e) =>
              h(
                "tr",
                { "data-number": e.phoneNumber },
                h("td", {}, h("code", { text: e.phoneNumber })),
                h("td", { text: e.reason || "" }),
                h("td", { text: e.source + (e.jobId ? ` (${e.jobId})` : "") }),
                h("td", { text: fmtTime(e.createdAt) }),
                h("td", { text: e.expiresAt ? fmtTime(e.expiresAt) : "never" }),
                h("td", {}, this.removeButton(e.phoneNumber))
              )
            )
          )
        )
      );
    }
    replace(
      this.pager,
      pagination.hasPrev ? h("a", { href: `#/dnc?page=${pagination.page - 1}`, text: "← Newer" }) : null,
      h("span", { class: "muted", text: `page ${pagination.page} of ${Math.max(1, pagination.totalPages)} · ${plural(pagination.total, "number")}` }),
      pagination.hasNext ? h("a", { href: `#/dnc?page=${pagination.page + 1}`, text: "Older →" }) : null
    );
  }

  /** Remove, after a second click on the same button (a number removed can be dialed). */
  removeButton(number) {
    const button = h("button", {
      type: "button",
      class: "danger small",
      "data-remove": number,
      text: "Remove",
      onclick: async () => {
        if (button.dataset.confirm !== "yes") {
          button.dataset.confirm = "yes";
          button.textContent = "Remove: sure?";
          return;
        }
        button.disabled = true;
        try {
          await del(`/v1/api/suppressions/${encodeURIComponent(number)}`);
          banner(`${number} was removed from the do-not-call list: it can be dialed again.`, "info");
        } catch (err) {
          banner(`Remove ${number}: ${err.message}`, "error");
        }
        this.load();
      },
    });
    return button;
  }

  async add(event) {
    event.preventDefault();
    this.addError.hidden = true;
    const body = { phoneNumbers: [this.number.value.trim()], reason: this.reason.value.trim() };
    if (this.country.value.trim()) body.defaultCountry = this.country.value.trim().toUpperCase();
    try {
      const answer = await post("/v1/api/suppressions", { json: body });
      banner(`${body.phoneNumbers[0]} is on the do-not-call list (${plural(answer.added, "number")} written).`, "info");
      this.number.value = "";
      this.reason.value = "";
    } catch (err) {
      this.addError.hidden = false;
      const problem = err instanceof ApiError && err.body.problems && err.body.problems[0];
      this.addError.textContent = problem ? `Not added: ${problem.reason}` : `Not added: ${err.message}`;
      return;
    }
    if (this.page !== 1) navigate("#/dnc");
    else this.load();
  }

  async importCsv(event) {
    event.preventDefault();
    const file = this.file.files[0];
    if (!file) {
      replace(this.importResult, h("p", { class: "error", text: "Choose a CSV file." }));
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    if (this.importReason.value.trim()) form.append("reason", this.importReason.value.trim());
    if (this.country.value.trim()) form.append("defaultCountry", this.country.value.trim().toUpperCase());
    try {
      const answer = await post("/v1/api/suppressions", { form });
      replace(this.importResult, h("p", { class: "ok", text: `${plural(answer.added, "number")} added (a number already listed takes the new reason).` }));
    } catch (err) {
      const problems = (err instanceof ApiError && err.body.problems) || [];
      replace(
        this.importResult,
        h("p", { class: "error", role: "alert", text: `Nothing was imported: ${err.message}` }),
        problems.length
          ? h(
              "table",
              { class: "table small", id: "dnc-import-problems" },
              h("thead", {}, h("tr", {}, ["Row", "Reason", "Value"].map((t) => h("th", { text: t })))),
              h("tbody", {}, problems.map((p) => h("tr", {}, h("td", { text: String(p.row ?? p.index) }), h("td", { text: p.reason }), h("td", { text: p.value ?? "" }))))
            )
          : null
      );
      return;
    }
    this.file.value = "";
    if (this.page !== 1) navigate("#/dnc");
    else this.load();
  }
}
