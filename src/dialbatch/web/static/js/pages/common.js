// Bits several pages share.

/**
 * A warning when no worker is alive to dial queued batches, if this server's /readyz says
 * which workers it has seen (older servers do not: then nothing is claimed either way).
 */
export async function workersWarning() {
  try {
    const res = await fetch("/readyz", { credentials: "omit", cache: "no-store" });
    const body = await res.json();
    const workers = body.workers;
    const none = Array.isArray(workers) ? workers.length === 0 : workers === 0;
    if (none) return "No worker has been seen in the last minute: queued batches will not start until one runs (dialbatch serve or dialbatch worker).";
  } catch {
    // no answer: say nothing rather than guess
  }
  return null;
}
