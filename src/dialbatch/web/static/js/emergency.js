// The workspace's emergency stop, in the header of every page: one click (and a
// confirmation) pauses every batch of the workspace (POST /v1/api/workspace/pause); while it
// holds, a bar under the header says so on every page, with the way back (resume).
// Shown only when the server has those endpoints.

import { get, has, post, serverFeatures } from "./api.js";
import { fmtTime, h, replace } from "./dom.js";
import { banner } from "./nav.js";

const CHECK_MS = 30000;

/** Pages listen for this to read their batches again after the stop changed. */
export const WORKSPACE_CHANGED = "dialbatch:workspace";
/** Pages send this ({detail: {paused}}) when an answer told them the workspace's state. */
export const WORKSPACE_SEEN = "dialbatch:workspace-seen";

export class EmergencyStop {
  constructor(slot, bar) {
    this.slot = slot; // in the header
    this.bar = bar; // under the header, while the workspace is paused
    this.state = null; // {paused, pausedAt} from GET /v1/api/workspace
    this.confirming = false;
    this.timer = null;
    window.addEventListener(WORKSPACE_SEEN, (e) => this.learned(Boolean(e.detail && e.detail.paused)));
  }

  /** Signed in: read the state now and every 30 s. Signed out: hide everything. */
  async start() {
    const feats = await serverFeatures();
    this.enabled = has(feats, "/v1/api/workspace/pause", "post") && has(feats, "/v1/api/workspace", "get");
    if (!this.enabled) return this.stop();
    if (!this.timer) this.timer = setInterval(() => this.refresh(), CHECK_MS);
    await this.refresh();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.state = null;
    this.confirming = false;
    this.slot.hidden = true;
    this.bar.hidden = true;
  }

  async refresh() {
    try {
      this.state = await get("/v1/api/workspace");
    } catch {
      return; // signed out meanwhile, or the server is away: keep what is shown
    }
    this.render();
  }

  /** What a page learned on its own (a batch's `workspacePaused`), without a request. */
  learned(paused) {
    if (this.state && this.state.paused !== paused) this.refresh();
  }

  render() {
    if (!this.state) return;
    const paused = Boolean(this.state.paused);
    this.slot.hidden = false;
    this.slot.dataset.paused = String(paused);
    if (this.confirming) {
      const verb = paused ? "resume" : "pause";
      replace(
        this.slot,
        h("span", { class: "confirm-text", text: paused ? "Resume every batch not paused by hand?" : "Stop dialing in every batch of this workspace?" }),
        h("button", { type: "button", class: paused ? "primary" : "stop", id: `confirm-workspace-${verb}`, text: paused ? "Resume dialing" : "Pause all dialing", onclick: () => this.apply(verb) }),
        h("button", { type: "button", class: "link", id: "keep-workspace", text: paused ? "Keep paused" : "Keep dialing", onclick: () => ((this.confirming = false), this.render()) })
      );
    } else {
      replace(
        this.slot,
        h("button", {
          type: "button",
          class: paused ? "primary" : "stop",
          id: paused ? "workspace-resume" : "workspace-pause",
          title: paused ? "Resume the workspace's batches" : "Emergency stop: pause every batch of the workspace",
          text: paused ? "Resume dialing…" : "■ Emergency stop…",
          onclick: () => ((this.confirming = true), this.render()),
        })
      );
    }
    this.bar.hidden = !paused;
    if (paused) {
      replace(this.bar, h("b", { text: "Workspace paused" }), ` since ${fmtTime(this.state.pausedAt)}: no batch starts a new dial; live calls run to their end. `, h("span", { class: "muted", text: "Use “Resume dialing…” at the top to go on." }));
    }
  }

  async apply(verb) {
    this.confirming = false;
    try {
      const answer = await post(`/v1/api/workspace/${verb}`);
      this.state = { ...this.state, paused: answer.paused, pausedAt: answer.pausedAt };
      banner(answer.message || `Workspace ${verb}d`, verb === "pause" ? "warn" : "info");
    } catch (err) {
      banner(`Workspace ${verb}: ${err.message}`, "error");
    }
    this.render();
    window.dispatchEvent(new CustomEvent(WORKSPACE_CHANGED));
  }
}
