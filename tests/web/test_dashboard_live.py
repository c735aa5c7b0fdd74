"""The dashboard's side of the live-events interface (docs/dashboard.md), checked in the
browser against a stand-in for the stream: the server under test may not have the events
endpoints yet, and a stand-in can drop the stream and expire the token on cue.

The stand-in answers only the two event routes (and adds the campaign actions to
/openapi.json); every other request goes to the real `dialbatch serve`.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import expect

from tests.web.conftest import Served

MODE_RECORDER = """
window.__modes = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("live");
  new MutationObserver(() => {
    const mode = el.dataset.mode;
    if (mode && window.__modes[window.__modes.length - 1] !== mode) window.__modes.push(mode);
  }).observe(el, { attributes: true, attributeFilter: ["data-mode"] });
});
"""
FUTURE_MS = int((time.time() + 3 * 24 * 3600) * 1000)


def _sign_in(page: Any, server: Served) -> None:
    page.goto(f"{server.url}/")
    page.fill("#workspace", server.workspace_id)
    page.fill("#apikey", server.api_key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#batches")


def _scheduled_batch(server: Served) -> str:
    """A batch that waits for a start three days away: it stays `queued`."""
    with server.client() as http:
        answer = http.post(
            "/v1/api/batch-calls",
            files={"file": ("c.csv", b"phone_number\n+12025550150\n+12025550151\n")},
            data={"agentId": "agent_demo", "scheduledAt": str(FUTURE_MS)},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["batchId"])


class StandIn:
    """The events lane's routes as the interface describes them, scripted."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.tokens = 0
        self.streams: list[dict[str, str]] = []  # each connection's request
        self.lock = threading.Lock()

    def token(self, route: Any) -> None:
        with self.lock:
            self.tokens += 1
            n = self.tokens
        body = {"token": f"tok{n}", "expiresAt": int(time.time() * 1000) + 300_000}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def batch_stream(self, route: Any) -> None:
        request = route.request
        with self.lock:
            self.streams.append({"url": request.url})
            n = len(self.streams)
        if n in (2, 4):
            # The token expired while the stream was down: the browser's own reconnect is
            # refused, and the page must come back with a fresh token.
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error": "Unauthorized", "message": "token expired"}',
            )
            return
        batch_id = request.url.split("/batch-calls/")[1].split("/")[0]
        with httpx.Client(base_url=self.server.url, headers=self.server.headers) as http:
            snapshot = http.get(f"/v1/api/batch-calls/{batch_id}/status").text
        # A fresh connection's snapshot carries the resume point (id 5); a resumed one's
        # does not, and the events after the resume point follow it (id 7).
        body = "retry: 300\n\n" + ("id: 5\n" if n == 1 else "")
        body += f"event: snapshot\ndata: {snapshot}\n\n"
        if n == 3:
            event = {"batchId": batch_id, "jobId": f"call_{batch_id[6:]}_0", "status": "waiting"}
            body += f"id: 7\nevent: call.retry_scheduled\ndata: {json.dumps(event)}\n\n"
        body += ": heartbeat\n\n"
        # The body ends here, so the connection drops: EventSource reconnects by itself.
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    def openapi(self, route: Any) -> None:
        doc = route.fetch().json()
        for action in ("pause", "resume", "retry-failed"):
            doc["paths"][f"/v1/api/batch-calls/{{batchId}}/{action}"] = {"post": {}}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(doc))


def test_live_stream_reconnects_with_a_fresh_token_and_catches_up(
    browser: Any, live_server: Served, tmp_path: Path
) -> None:
    batch_id = _scheduled_batch(live_server)
    stand_in = StandIn(live_server)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(45_000)
    page.route("**/v1/api/events/token", stand_in.token)
    page.route("**/v1/api/batch-calls/*/events*", stand_in.batch_stream)
    page.route(
        "**/v1/api/events?*",
        lambda route: route.fulfill(
            status=200,
            headers={"content-type": "text/event-stream"},
            body='retry: 5000\n\nevent: snapshot\ndata: {"lastEventId": 0}\n\n',
        ),
    )
    page.route("**/openapi.json", stand_in.openapi)
    # Every mode the live indicator shows, in order (the stand-in's streams end at once, so
    # "live" lasts only until the next drop).
    page.add_init_script(MODE_RECORDER)
    _sign_in(page, live_server)
    page.evaluate("window.__modes.length = 0")
    page.goto(f"{live_server.url}/#/batches/{batch_id}")
    page.wait_for_selector("#batch-status[data-status=queued]")

    # Connected, dropped, refused (expired token), reconnected with a fresh token from the
    # resume point the snapshot gave; then the same again from the last event seen.
    deadline = time.monotonic() + 45
    while len(stand_in.streams) < 5 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    first, second, third, fourth, fifth = stand_in.streams[:5]
    token = parse_qs(urlsplit(first["url"]).query)["token"][0]
    assert token.startswith("tok") and "lastEventId" not in first["url"]
    # the browser's own reconnect, with the same token (it adds Last-Event-ID itself; the
    # header is not visible to Playwright's route, so the page's own resume is checked)
    assert second["url"] == first["url"]
    again = parse_qs(urlsplit(third["url"]).query)
    assert again["token"][0] != token and again["lastEventId"] == ["5"]
    assert fourth["url"] == third["url"]
    last = parse_qs(urlsplit(fifth["url"]).query)
    assert last["token"][0] != again["token"][0] and last["lastEventId"] == ["7"]
    # live, dropped (reconnecting, polling meanwhile), live again
    # (polled from here: the page's policy forbids the eval that wait_for_function uses)
    modes: list[str] = []
    deadline = time.monotonic() + 45
    while modes.count("live") < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        modes = page.evaluate("window.__modes")
    assert modes[0] == "live" and "reconnecting" in modes, modes

    # The server's campaign actions are offered because /openapi.json lists them.
    actions = page.locator("#actions")
    assert actions.locator("[data-action=pause]").is_visible()
    assert actions.locator("[data-action=resume]").count() == 0  # not paused
    assert actions.locator("[data-action=retry-failed]").count() == 0  # nothing failed
    page.screenshot(path=str(tmp_path / "live-actions.png"), full_page=True)

    # Cancel from the page: the batch turns cancelled, with no reload.
    page.click("[data-action=cancel]")
    page.check("#hangup-active")
    page.click("[data-action=confirm-cancel]")
    page.wait_for_selector("#batch-status[data-status=cancelled]")
    # (the status flips first, the waiting calls follow a moment later)
    expect(page.locator("#progress")).to_contain_text("cancelled 2", timeout=45_000)
    assert page.locator("#stats [data-stat=Calls]").inner_text() == "2"
    assert actions.locator("button").count() == 0  # nothing left to do
    page.screenshot(path=str(tmp_path / "live-cancelled.png"), full_page=True)
    context.close()


def test_a_scheduled_batch_from_the_form_and_only_the_actions_the_server_has(
    browser: Any, live_server: Served, tmp_path: Path
) -> None:
    """The form's optional fields reach the API (a start time, smart callbacks), and the
    actions offered are the ones this server's /openapi.json lists."""
    start = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    context = browser.new_context(timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(45_000)
    _sign_in(page, live_server)
    page.click("text=New batch")
    page.wait_for_selector("#agent option[value=agent_demo]", state="attached")
    page.set_input_files(
        "#file",
        files=[{"name": "c.csv", "mimeType": "text/csv", "buffer": b"phone\n(202) 555-0160\n"}],
    )
    page.fill("#scheduledAt", start.strftime("%Y-%m-%dT%H:%M"))
    page.check("#cb-enabled")
    page.fill("#cb-attempts", "2")
    page.fill("#cb-gaps", "6")
    page.fill("#retry-policy", '{"voicemail": false}')
    page.fill("#defaultCountry", "us")
    page.click("#create")
    page.wait_for_selector("#batch-status[data-status=queued]")
    batch_id = page.url.split("#/batches/")[1]
    with live_server.client() as http:
        batch = http.get(f"/v1/api/batch-calls/{batch_id}").json()
        paths = http.get("/openapi.json").json()["paths"]
        token_route = http.post("/v1/api/events/token").status_code
    assert batch["scheduledAt"] == int(start.timestamp() * 1000)
    assert batch["totalCalls"] == 1
    # retryPolicy wins over the smart callbacks for the outcome it names.
    assert batch["retryPolicy"]["voicemail"] == {"retry": False}
    assert batch["retryPolicy"]["busy"]["maxDials"] == 2
    page.wait_for_selector("[data-stat=Retries]")
    assert "scheduled " in page.inner_text(".meta")
    page.wait_for_selector("#actions [data-action=cancel]")
    for action in ("pause", "resume", "retry-failed"):
        if f"/v1/api/batch-calls/{{batchId}}/{action}" not in paths:
            assert page.locator(f"[data-action={action}]").count() == 0, action
    # without an event stream, the page says that it polls
    if token_route == 404:
        page.wait_for_selector("#live[data-mode=polling]")
    page.screenshot(path=str(tmp_path / "scheduled.png"), full_page=True)
    context.close()
