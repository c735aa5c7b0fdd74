// Sign in: the workspace id and API key, checked against the API before they are kept
// (in sessionStorage: this tab only; never a cookie).

import { ApiError, request, setSession } from "../api.js";
import { h } from "../dom.js";
import { banner, navigate } from "../nav.js";

export class SignInPage {
  mount(root) {
    const workspace = h("input", { id: "workspace", name: "workspace", required: true, autocomplete: "username", placeholder: "ws_demo", value: "" });
    const key = h("input", { id: "apikey", name: "apikey", type: "password", required: true, autocomplete: "current-password" });
    const error = h("p", { class: "error", id: "signin-error", role: "alert", hidden: true });
    const button = h("button", { type: "submit", class: "primary", text: "Sign in" });
    const form = h(
      "form",
      { class: "card narrow", id: "signin", onsubmit: (e) => this.submit(e, workspace, key, error, button) },
      h("h1", { text: "Sign in" }),
      h(
        "p",
        { class: "muted" },
        "Use a workspace id and one of its API keys (the demo ones ",
        h("code", { text: "dialbatch serve" }),
        " prints, or one from ",
        h("code", { text: "dialbatch keys create" }),
        "). The key stays in this browser tab only, and is forgotten when it closes."
      ),
      h("label", { for: "workspace", text: "Workspace id" }),
      workspace,
      h("label", { for: "apikey", text: "API key" }),
      key,
      error,
      button
    );
    root.append(form);
    workspace.focus();
  }

  async submit(event, workspace, key, error, button) {
    event.preventDefault();
    error.hidden = true;
    const who = { workspaceId: workspace.value.trim(), apiKey: key.value.trim() };
    button.disabled = true;
    try {
      // Any authenticated read proves the pair; the agents list is small.
      await request("/v1/api/agents", { session: who, signin: true });
    } catch (err) {
      button.disabled = false;
      error.hidden = false;
      if (err instanceof ApiError && err.status === 401) {
        error.textContent = `Wrong workspace id or API key: the server refused them (“${err.message}”). Check both and try again.`;
      } else {
        error.textContent = `Could not sign in: ${err.message}`;
      }
      return;
    }
    setSession(who.workspaceId, who.apiKey);
    banner("");
    navigate("#/batches");
  }
}
