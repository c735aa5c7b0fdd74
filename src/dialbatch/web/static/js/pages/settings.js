// The workspace's settings (GET /v1/api/workspace), shown whatever they are: a setting the
// server lets a client change is a small form built from the server's own OpenAPI schema
// (a property of PATCH /v1/api/workspace, or a PUT /v1/api/workspace/<name> of its own);
// any other setting is shown read-only. So a setting added to the API appears here without
// a change to this page.

import { bodySchema, get, has, patch, put, resolveRef, serverFeatures } from "../api.js";
import { fmtTime, h, replace } from "../dom.js";
import { banner } from "../nav.js";
import { describeValue } from "./common.js";

// Shown elsewhere (the header's emergency stop) or not a setting.
const NOT_SETTINGS = new Set(["workspaceId", "paused", "pausedAt", "message"]);
const kebab = (name) => name.replace(/([A-Z])/g, "-$1").toLowerCase();

export class SettingsPage {
  mount(root) {
    this.body = h("div", { id: "settings" }, h("p", { class: "muted", text: "Loading…" }));
    root.append(h("section", { class: "card" }, h("h1", { text: "Settings" }), this.body));
    this.load();
  }

  async load() {
    let feats, ws;
    try {
      [feats, ws] = await Promise.all([serverFeatures(), get("/v1/api/workspace")]);
    } catch (err) {
      replace(this.body, h("p", { class: "error", text: `The settings could not be read: ${err.message}` }));
      return;
    }
    this.feats = feats;
    const patchSchema = bodySchema(feats, "/v1/api/workspace", "patch");
    const patchable = (patchSchema && patchSchema.properties) || {};
    const parts = [
      h(
        "p",
        { class: "meta", id: "settings-state" },
        `Workspace ${ws.workspaceId}: `,
        ws.paused ? h("b", { class: "error", text: `paused since ${fmtTime(ws.pausedAt)}` }) : h("span", { class: "ok", text: "dialing" }),
        " (the emergency stop at the top pauses and resumes every batch)."
      ),
    ];
    const names = Object.keys(ws).filter((k) => !NOT_SETTINGS.has(k));
    // Settings a client may set but the GET does not show yet: offered too.
    for (const k of Object.keys(patchable)) if (!names.includes(k)) names.push(k);
    for (const name of names) {
      const own = `/v1/api/workspace/${kebab(name)}`;
      if (name in patchable) {
        parts.push(this.editor(name, ws[name], resolveRef(feats, patchable[name]), (value) => patch("/v1/api/workspace", { json: { [name]: value } })));
      } else if (has(feats, own, "put")) {
        parts.push(this.editor(name, ws[name], bodySchema(feats, own, "put"), (value) => put(own, { json: value })));
      } else {
        parts.push(readOnly(name, ws[name]));
      }
    }
    replace(this.body, parts);
  }

  /** A form for one setting: an input per property of an object of scalars, else JSON. */
  editor(name, value, schema, save) {
    const props = schema && schema.properties;
    const scalar = props && Object.values(props).every((p) => ["integer", "number", "boolean", "string"].includes(typeOf(p)));
    const nullable = Boolean(schema && ([].concat(schema.type || []).includes("null") || schema.nullable));
    const error = h("p", { class: "error", role: "alert", hidden: true });
    // A setting that is one value (a profile's name, a switch) is one input.
    const single = !props && schema && ["integer", "number", "boolean", "string"].includes(typeOf(schema));
    let read;
    let inputs;
    if (single) {
      const one = field(name, null, schema, value);
      inputs = [one];
      read = () => {
        if (one.kind === "boolean") return one.input.checked;
        const raw = one.input.value.trim();
        if (raw === "") return nullable ? null : raw;
        return one.kind === "string" ? raw : Number(raw);
      };
    } else if (scalar) {
      inputs = Object.entries(props).map(([prop, p]) => field(name, prop, p, value && value[prop]));
      read = () => {
        const out = {};
        for (const { prop, input, kind } of inputs) {
          if (kind === "boolean") out[prop] = input.checked;
          else if (input.value.trim() === "") continue;
          else out[prop] = kind === "string" ? input.value : Number(input.value);
        }
        return Object.keys(out).length || !nullable ? out : null;
      };
    } else {
      const area = h("textarea", { id: `set-${name}`, rows: 4, class: "json", text: JSON.stringify(value ?? null, null, 2) });
      inputs = [{ node: h("div", {}, area) }];
      read = () => JSON.parse(area.value);
    }
    const describe = (schema && schema.description) || "";
    const form = h(
      "form",
      {
        class: "setting",
        id: `setting-${name}`,
        "data-setting": name,
        // The server checks the values and names the field it refuses: one voice for limits.
        novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          error.hidden = true;
          let next;
          try {
            next = read();
          } catch (err) {
            error.hidden = false;
            error.textContent = `Not JSON: ${err.message}`;
            return;
          }
          try {
            await save(next);
            banner(`${name} saved.`, "info");
          } catch (err) {
            error.hidden = false;
            error.textContent = `Not saved: ${err.message}`;
            return;
          }
          this.load();
        },
      },
      h("h2", {}, h("code", { text: name })),
      describe ? h("p", { class: "hint", text: describe }) : null,
      h("p", { class: "small", "data-current": name }, "Now: ", h("b", { text: value === null || value === undefined ? "not set" : describeValue(value) })),
      h("div", { class: "fields-row" }, inputs.map((i) => i.node)),
      nullable && scalar ? h("span", { class: "hint", text: "Leave every box empty to remove it." }) : null,
      error,
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: `save-${name}`, text: "Save" }))
    );
    return form;
  }
}

function typeOf(p) {
  const types = [].concat(p.type || []).filter((t) => t !== "null");
  return types[0] || (p.enum ? "string" : "object");
}

function field(name, prop, p, current) {
  const kind = typeOf(p);
  // prop is null for a setting that is one value: its input is `set-<name>`.
  const id = prop === null ? `set-${name}` : `set-${name}-${prop}`;
  const label = prop === null ? name : prop;
  let input;
  if (kind === "boolean") {
    input = h("input", { id, type: "checkbox", checked: current === undefined ? Boolean(p.default) : Boolean(current) });
    return { prop, kind, input, node: h("div", { class: "check" }, input, h("label", { for: id, text: label })) };
  }
  if (kind === "string" && p.enum) {
    input = h("select", { id }, p.enum.map((v) => h("option", { value: v, text: v, selected: v === current })));
  } else if (kind === "string") {
    input = h("input", { id, value: current ?? "" });
  } else {
    const attrs = { id, type: "number", step: kind === "integer" ? 1 : "any", value: current ?? "", placeholder: p.default !== undefined ? String(p.default) : "" };
    if (p.minimum !== undefined) attrs.min = p.minimum;
    if (p.maximum !== undefined) attrs.max = p.maximum;
    input = h("input", attrs);
  }
  return { prop, kind, input, node: h("div", { class: "field" }, h("label", { for: id, text: label }), input) };
}

function readOnly(name, value) {
  const simple = value === null || typeof value !== "object";
  return h(
    "div",
    { class: "setting", id: `setting-${name}`, "data-setting": name, "data-readonly": "true" },
    h("h2", {}, h("code", { text: name }), h("span", { class: "muted small", text: " read-only here" })),
    simple ? h("p", { "data-current": name, text: describeValue(value) }) : h("pre", { class: "json", "data-current": name, text: JSON.stringify(value, null, 2) })
  );
}
