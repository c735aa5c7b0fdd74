// The shell: a hash router (#/batches, #/new, #/batches/<id>, #/batches/<id>/calls/<jobId>,
// #/dnc, #/settings) and the header, with the workspace's emergency stop. Each page is an
// object with mount(root, route), optional update(route) (same page, other parameters) and
// unmount().

import { clearSession, getSession, has, serverFeatures, setUnauthorizedHandler } from "./api.js";
import { EmergencyStop } from "./emergency.js";
import { banner, navigate } from "./nav.js";
import { BatchesPage } from "./pages/batches.js";
import { BatchPage } from "./pages/batch.js";
import { NewBatchPage } from "./pages/newbatch.js";
import { SettingsPage } from "./pages/settings.js";
import { SignInPage } from "./pages/signin.js";
import { SuppressionsPage } from "./pages/suppressions.js";

const root = document.getElementById("app");
let current = null; // {key, page}
const emergency = new EmergencyStop(document.getElementById("emergency"), document.getElementById("workspace-paused"));

export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/batches";
  const [path, qs] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { path, parts, query: new URLSearchParams(qs || "") };
}

function resolve(route) {
  const [first, id, sub, jobId] = route.parts;
  if (!getSession()) return { key: "signin", make: () => new SignInPage() };
  if (first === "signin") return { key: "signin", make: () => new SignInPage() };
  if (first === "new") return { key: "new", make: () => new NewBatchPage() };
  if (first === "dnc") return { key: "dnc", make: () => new SuppressionsPage() };
  if (first === "settings") return { key: "settings", make: () => new SettingsPage() };
  if (first === "batches" && id) {
    route.batchId = id;
    route.jobId = sub === "calls" ? jobId || null : null;
    return { key: `batch:${id}`, make: () => new BatchPage() };
  }
  return { key: "batches", make: () => new BatchesPage() };
}

function render() {
  const route = parseHash();
  const { key, make } = resolve(route);
  header();
  if (current && current.key === key && current.page.update) {
    current.page.update(route);
    return;
  }
  if (current && current.page.unmount) current.page.unmount();
  const page = make();
  current = { key, page };
  root.replaceChildren();
  page.mount(root, route);
}

function header() {
  const who = getSession();
  document.getElementById("nav").hidden = !who;
  document.getElementById("signout").hidden = !who;
  document.getElementById("who").textContent = who ? who.workspaceId : "";
  if (!who) {
    document.getElementById("live").hidden = true;
    emergency.stop();
    return;
  }
  emergency.start();
  // Links to the pages of extensions this server has.
  serverFeatures().then((feats) => {
    document.getElementById("nav-dnc").hidden = !has(feats, "/v1/api/suppressions", "get");
    document.getElementById("nav-settings").hidden = !has(feats, "/v1/api/workspace", "get");
  });
}

document.getElementById("signout").addEventListener("click", () => {
  clearSession();
  banner("Signed out: the key is forgotten by this tab.", "info");
  navigate("#/signin");
});

setUnauthorizedHandler((err) => {
  clearSession();
  banner(`The server no longer accepts this API key (${err.message}). Sign in again.`, "error", 0);
  navigate("#/signin");
});

window.addEventListener("hashchange", render);
render();
