// Navigation and the banner, shared by the shell and the pages.

/** Go to a page (a hash route); going to the current one renders it again. */
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

let bannerTimer = null;

/** A message across the top: `kind` is "info", "warn" or "error"; `ms` 0 keeps it. */
export function banner(text, kind = "info", ms = 8000) {
  const el = document.getElementById("banner");
  if (bannerTimer) clearTimeout(bannerTimer);
  bannerTimer = null;
  if (!text) {
    el.hidden = true;
    return;
  }
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  if (ms) bannerTimer = setTimeout(() => (el.hidden = true), ms);
}
