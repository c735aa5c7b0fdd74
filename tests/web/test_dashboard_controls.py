"""The campaign and compliance controls in the dashboard, in a real browser against
`dialbatch serve`: a call's dials and the gate's word on it, a batch paused by hand, by a
failure spike and by the workspace's emergency stop, the do-not-call list, the settings,
and the new batch page's calling window and preview. Each test checks what the page did
through the API, keeps its screenshots under its tmp_path, and asserts that no request left
127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Served

FUTURE_MS = int((time.time() + 3 * 24 * 3600) * 1000)


@dataclass
class Watched:
    """A signed-in page, with what it asked for and what went wrong in it."""

    page: Any
    shots: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def ui(browser: Any, live_server: Served, tmp_path: Path) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(45_000)
    watched = Watched(page, tmp_path)
    page.on("request", lambda r: watched.requests.append(r.url))
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    # 4xx answers are logged by the browser as "Failed to load resource"; they are expected
    # (a removed number read back, a refused import). Anything else logged as an error is not.
    page.on(
        "console",
        lambda m: (
            watched.errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.goto(f"{live_server.url}/")
    page.fill("#workspace", live_server.workspace_id)
    page.fill("#apikey", live_server.api_key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#batches")
    yield watched
    # Nothing but this server was asked for anything, and the page raised nothing.
    assert watched.requests
    for url in watched.requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or parts.hostname == "127.0.0.1", url
    assert not watched.errors, watched.errors
    context.close()


def _agent(server: Served, name: str, outcomes: dict[str, int]) -> str:
    with server.client() as http:
        answer = http.post(
            "/v1/api/agents",
            json={"name": name, "providerConfig": {"outcomes": outcomes, "seed": 5}},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _batch(server: Served, numbers: list[str], agent: str, **fields: str) -> str:
    csv = "phone_number\n" + "\n".join(numbers) + "\n"
    with server.client() as http:
        answer = http.post(
            "/v1/api/batch-calls",
            files={"file": ("c.csv", csv.encode())},
            data={"agentId": agent, **fields},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["batchId"])


def _wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _with_extra(route: Any, extra: dict[str, Any]) -> None:
    """A GET answered by the server with fields added (settings other lanes are adding);
    anything else passes through."""
    if route.request.method != "GET":
        route.continue_()
        return
    answer = route.fetch()
    route.fulfill(response=answer, json={**answer.json(), **extra})


def test_a_calls_dials_and_the_gates_word_on_it(ui: Watched, live_server: Served) -> None:
    page = ui.page
    agent = _agent(live_server, "Always answers", {"completed": 1})
    number = "+12025550301"
    first = _batch(live_server, [number], agent)
    # The batch's gate summary and profile, once the API has them, whatever their keys.
    extra = {"gate": {"waitingForWindow": 3, "waitingForCap": 1}, "complianceProfile": "us"}
    page.route(f"**/v1/api/batch-calls/{first}", lambda route: _with_extra(route, extra))
    with live_server.client() as http:
        _wait(
            "the first call to end",
            lambda: http.get(f"/v1/api/batch-calls/{first}/status").json()["isComplete"],
        )
        job = http.get(f"/v1/api/batch-calls/{first}/calls").json()["calls"][0]["jobId"]
        detail = http.get(f"/v1/api/batch-calls/{first}/calls/{job}").json()

    # The call's detail lists its dial as the API does.
    page.goto(f"{live_server.url}/#/batches/{first}/calls/{job}")
    table = page.locator("#attempt-history")
    table.wait_for()
    rows = table.locator("tbody tr")
    assert rows.count() == len(detail["attemptHistory"]) == 1
    cells = rows.first.locator("td").all_inner_texts()
    dial = detail["attemptHistory"][0]
    assert cells[0] == "1" and cells[3] == dial["outcome"] == "completed"
    assert cells[5] == (dial["providerCode"] or "—")
    assert cells[6] == (dial["fromNumber"] or "—")
    assert page.locator("#gate-decision").count() == 0
    gate = page.locator("#gate-summary")
    assert gate.locator("[data-gate=waitingForWindow]").inner_text() == "waitingForWindow 3"
    assert gate.locator("[data-gate=waitingForCap]").inner_text() == "waitingForCap 1"
    assert page.inner_text("#compliance-profile") == "us"
    ui.shot("01-call-dials")

    # A cap of one dial a day: a second batch's call to the number is held, and says why.
    with live_server.client() as http:
        assert http.patch("/v1/api/workspace", json={"frequencyCaps": {"per24h": 1}}).is_success
    second = None
    try:
        second = _batch(live_server, [number], agent)
        with live_server.client() as http:
            job2 = http.get(f"/v1/api/batch-calls/{second}/calls").json()["calls"][0]["jobId"]
            _wait(
                "the cap to hold the call",
                lambda: (
                    http.get(f"/v1/api/batch-calls/{second}/calls/{job2}")
                    .json()
                    .get("gateDecision")
                ),
            )
        page.goto(f"{live_server.url}/#/batches/{second}/calls/{job2}")
        gate = page.locator("#gate-decision")
        gate.wait_for()
        assert gate.get_attribute("data-kind") == "capped"
        assert "frequency cap" in gate.inner_text()
        # Not dialed yet: its dials table holds only the gate's hold, before any dial.
        history = page.locator("#attempt-history")
        assert history.locator("tr[data-attempt]").count() == 0
        hold = history.locator("tr.gate-row[data-gate-kind=capped][data-after-dials='0']")
        assert hold.count() == 1 and "frequency cap" in hold.inner_text()
        ui.shot("02-call-capped")
    finally:
        with live_server.client() as http:
            http.patch("/v1/api/workspace", json={"frequencyCaps": None})
            if second:
                http.delete(f"/v1/api/batch-calls/{second}")


def test_paused_by_hand_then_resumed_and_paused_by_a_failure_spike(
    ui: Watched, live_server: Served
) -> None:
    page = ui.page
    # A batch that waits three days for its start: it stays queued while we pause it.
    numbers = ["+12025550311", "+12025550312"]
    waiting = _batch(live_server, numbers, "agent_demo", scheduledAt=str(FUTURE_MS))
    page.goto(f"{live_server.url}/#/batches/{waiting}")
    page.wait_for_selector("#batch-status[data-status=queued]")
    page.click("#actions [data-action=pause]")
    page.wait_for_selector("#batch-status[data-status=paused]")
    note = page.locator("#pause-note")
    expect(note).to_be_visible()
    assert note.get_attribute("data-reason") == "manual"
    assert "Paused by hand" in note.inner_text()
    with live_server.client() as http:
        assert http.get(f"/v1/api/batch-calls/{waiting}").json()["status"] == "paused"
    ui.shot("03-paused-by-hand")
    page.click("#note-resume")
    page.wait_for_selector("#batch-status[data-status=queued]")
    expect(note).to_be_hidden()
    with live_server.client() as http:
        assert http.get(f"/v1/api/batch-calls/{waiting}").json()["status"] == "queued"
        http.delete(f"/v1/api/batch-calls/{waiting}")

    # A carrier that fails every dial: the batch stops itself, and the page says why.
    broken = _agent(live_server, "Broken carrier", {"failed": 1})
    numbers = [f"+120255503{i:02d}" for i in range(20, 40)]
    rule = '{"lastDials": 4, "failedShare": 0.5}'
    spiked = _batch(live_server, numbers, broken, failureStop=rule)
    with live_server.client() as http:
        _wait(
            "the batch to pause itself",
            lambda: http.get(f"/v1/api/batch-calls/{spiked}/status").json().get("pauseReason"),
        )
        reason = http.get(f"/v1/api/batch-calls/{spiked}/status").json()["pauseReason"]
    page.goto(f"{live_server.url}/#/batches/{spiked}")
    page.wait_for_selector("#batch-status[data-status=paused]")
    assert note.get_attribute("data-reason") == "automatic"
    assert page.inner_text("#pause-reason") == reason
    expect(page.locator("#note-resume")).to_be_visible()
    assert "pauses when 50 % of the last 4 dials" in page.inner_text("#failure-stop")
    ui.shot("04-paused-automatically")
    with live_server.client() as http:
        http.delete(f"/v1/api/batch-calls/{spiked}")


def test_the_emergency_stop_pauses_and_resumes_the_workspace(
    ui: Watched, live_server: Served
) -> None:
    page = ui.page
    waiting = _batch(live_server, ["+12025550351"], "agent_demo", scheduledAt=str(FUTURE_MS))
    page.goto(f"{live_server.url}/#/batches/{waiting}")
    page.wait_for_selector("#batch-status[data-status=queued]")
    # One click asks; only the confirmation pauses.
    page.click("#workspace-pause")
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["paused"] is False
    page.click("#confirm-workspace-pause")
    bar = page.locator("#workspace-paused")
    expect(bar).to_be_visible()
    assert "Workspace paused" in bar.inner_text()
    page.wait_for_selector("#batch-status[data-status=paused]")
    assert page.locator("#pause-note").get_attribute("data-reason") == "workspace"
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["paused"] is True
    ui.shot("05-workspace-paused")
    # It holds on every page.
    page.click("#nav >> text=Batches")
    page.wait_for_selector("#batches")
    expect(bar).to_be_visible()
    page.click("#workspace-resume")
    page.click("#confirm-workspace-resume")
    expect(bar).to_be_hidden()
    expect(page.locator("#workspace-pause")).to_be_visible()
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["paused"] is False
        assert http.get(f"/v1/api/batch-calls/{waiting}").json()["status"] == "queued"
        http.delete(f"/v1/api/batch-calls/{waiting}")


def test_the_do_not_call_list(ui: Watched, live_server: Served) -> None:
    page = ui.page
    number = "+12025550361"
    page.click("#nav-dnc")
    page.wait_for_selector("#dnc-list")
    page.fill("#dnc-number", "(202) 555-0361")
    page.fill("#dnc-country", "us")
    page.fill("#dnc-reason", "asked on the phone")
    page.click("#dnc-add-button")
    row = page.locator(f"#dnc-table tr[data-number='{number}']")
    row.wait_for()
    assert "asked on the phone" in row.inner_text() and "api" in row.inner_text()
    with live_server.client() as http:
        entry = http.get(f"/v1/api/suppressions/{number}").json()
    assert entry["reason"] == "asked on the phone"
    ui.shot("06-dnc-added")

    # A CSV import: two numbers; then one with a bad row, refused by row.
    page.set_input_files(
        "#dnc-file",
        files=[
            {
                "name": "dnc.csv",
                "mimeType": "text/csv",
                "buffer": b"phone_number,reason\n+12025550362,complaint\n+12025550363,\n",
            }
        ],
    )
    page.click("#dnc-import-button")
    expect(page.locator("#dnc-import-result")).to_contain_text("2 numbers added")
    page.wait_for_selector("#dnc-table tr[data-number='+12025550363']")
    page.set_input_files(
        "#dnc-file",
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"phone_number\n+1202\n"}],
    )
    page.click("#dnc-import-button")
    page.locator("#dnc-import-problems").wait_for()
    assert "Nothing was imported" in page.inner_text("#dnc-import-result")

    # Remove asks once more, then removes.
    remove = row.locator("[data-remove]")
    remove.click()
    expect(remove).to_have_text("Remove: sure?")
    remove.click()
    expect(row).to_have_count(0)
    with live_server.client() as http:
        assert http.get(f"/v1/api/suppressions/{number}").status_code == 404
        listed = http.get("/v1/api/suppressions").json()["suppressions"]
        for other in ("+12025550362", "+12025550363"):
            assert any(e["phoneNumber"] == other for e in listed)
            http.delete(f"/v1/api/suppressions/{other}")
    ui.shot("07-dnc-removed")


def test_settings_edit_the_caps_and_show_the_rest(ui: Watched, live_server: Served) -> None:
    page = ui.page
    # A setting the server shows but no client may change is shown read-only, as it is.
    extra = {"carrierNote": {"route": "primary", "checked": True}}
    page.route("**/v1/api/workspace", lambda route: _with_extra(route, extra))
    page.click("#nav-settings")
    note = page.locator("[data-setting=carrierNote][data-readonly=true]")
    note.wait_for()
    assert '"route": "primary"' in note.locator("[data-current=carrierNote]").inner_text()
    page.unroute("**/v1/api/workspace")
    # A setting that is one value is one input: the rule pack is picked from a list.
    profile = page.locator("#setting-complianceProfile")
    assert profile.get_attribute("data-readonly") is None
    page.select_option("#set-complianceProfile", "us")
    page.click("#save-complianceProfile")
    expect(profile.locator("[data-current=complianceProfile]")).to_contain_text("us")
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["complianceProfile"] == "us"
    # Back as it was: the other pages' tests share this workspace and dial at any hour.
    page.select_option("#set-complianceProfile", "none")
    page.click("#save-complianceProfile")
    expect(profile.locator("[data-current=complianceProfile]")).to_contain_text("none")
    form = page.locator("#setting-frequencyCaps")
    form.wait_for()
    page.fill("#set-frequencyCaps-per24h", "4")
    page.click("#save-frequencyCaps")
    expect(form.locator("[data-current=frequencyCaps]")).to_contain_text("per24h 4")
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["frequencyCaps"] == {"per24h": 4}
    # A bad value is refused by the server, and the page says so; nothing changes.
    page.fill("#set-frequencyCaps-per24h", "0")
    page.click("#save-frequencyCaps")
    expect(form.locator(".error")).to_contain_text("Not saved")
    with live_server.client() as http:
        ws = http.get("/v1/api/workspace").json()
    assert ws["frequencyCaps"] == {"per24h": 4}
    # Every setting the workspace has is on the page, editable or not.
    for name in ws:
        if name not in ("workspaceId", "paused", "pausedAt"):
            assert page.locator(f"[data-setting={name}]").count() == 1, name
    ui.shot("08-settings")
    # Emptied, the caps are removed.
    page.fill("#set-frequencyCaps-per24h", "")
    page.click("#save-frequencyCaps")
    expect(form.locator("[data-current=frequencyCaps]")).to_contain_text("not set")
    with live_server.client() as http:
        assert http.get("/v1/api/workspace").json()["frequencyCaps"] is None


def test_a_new_batch_with_a_calling_window_and_its_preview(
    ui: Watched, live_server: Served
) -> None:
    page = ui.page
    page.click("#nav >> text=New batch")
    page.wait_for_selector("#agent option[value=agent_demo]", state="attached")
    csv = b"phone_number\n+12025550371\n+13105550372\n+12025550371\n"
    page.set_input_files("#file", files=[{"name": "c.csv", "mimeType": "text/csv", "buffer": csv}])
    page.select_option("#agent", "agent_demo")
    # The preview comes by itself: counts, zones and an estimate, before anything exists.
    message = page.locator("#preview-message[data-valid=false]")
    message.wait_for()
    counts = page.locator("#preview-counts")
    assert counts.locator("[data-count=totalRows]").inner_text() == "3"
    assert counts.locator("[data-count=validRows]").inner_text() == "2"
    assert counts.locator("[data-count=duplicateRows]").inner_text() == "1"
    assert "America/New_York" in page.inner_text("#preview-zones")
    assert "Would finish about" in page.inner_text("#preview-estimate")
    page.check("#dedupe")
    page.locator("#preview-message[data-valid=true]").wait_for()
    with live_server.client() as http:
        before = http.get("/v1/api/batch-calls").json()["pagination"]["total"]

    # A calling window: weekdays 09:00-17:00 and Saturday morning, New York time, no
    # Christmas.
    page.check("#cw-enabled")
    assert page.is_checked("#cw-mon") and not page.is_checked("#cw-sun")  # weekdays first
    page.check("#cw-sat")
    page.fill("#cw-sat-ranges", "09:00-12:00")
    page.select_option("#cw-tz-rule", "fixed")
    page.fill("#cw-zone", "America/New_York")
    page.fill("#cw-skip", "2026-12-25")
    # Its share of the workspace: at most one call live at once, ahead of the others.
    page.fill("#maxConcurrency", "1")
    page.fill("#priority", "5")
    ui.shot("09-new-batch-window")
    page.click("#create")
    page.wait_for_selector("#batch-status")
    batch_id = page.url.split("#/batches/")[1]
    summary = page.inner_text("#calling-window")
    dash = "\u2013"  # the page writes ranges with an en dash
    assert f"Mon{dash}Fri 09:00{dash}17:00 · Sat 09:00{dash}12:00" in summary
    assert "America/New_York" in summary and "2026-12-25" in summary
    with live_server.client() as http:
        batch = http.get(f"/v1/api/batch-calls/{batch_id}").json()
        after = http.get("/v1/api/batch-calls").json()["pagination"]["total"]
    assert after == before + 1 and batch["totalCalls"] == 2
    weekday = [["09:00", "17:00"]]
    assert batch["callingWindow"]["timezone"] == "America/New_York"
    days = batch["callingWindow"]["days"]
    assert {d: days[d] for d in ("mon", "fri", "sat")} == {
        "mon": weekday,
        "fri": weekday,
        "sat": [["09:00", "12:00"]],
    }
    assert "sun" not in days and batch["callingWindow"]["skipDates"] == ["2026-12-25"]
    assert (batch["maxConcurrency"], batch["priority"]) == (1, 5)
    assert page.inner_text("#batch-share") == "at most 1 calls live at once · priority 5"
    ui.shot("10-batch-window")

    # A window the server refuses: its message names the field; nothing is created.
    page.click("#nav >> text=New batch")
    page.wait_for_selector("#agent option[value=agent_demo]", state="attached")
    page.set_input_files("#file", files=[{"name": "c.csv", "mimeType": "text/csv", "buffer": csv}])
    page.check("#dedupe")
    page.check("#cw-enabled")
    page.select_option("#cw-tz-rule", "fixed")
    page.fill("#cw-zone", "Mars/Olympus")
    page.click("#create")
    expect(page.locator("#create-error")).to_contain_text("callingWindow.timezone")
    # A priority out of range: the browser holds the form back (the input has the server's
    # range); still nothing is created.
    page.fill("#cw-zone", "America/New_York")
    page.fill("#priority", "500")
    page.click("#create")
    assert page.eval_on_selector("#priority", "e => e.validity.rangeOverflow")
    with live_server.client() as http:
        assert http.get("/v1/api/batch-calls").json()["pagination"]["total"] == after
        http.delete(f"/v1/api/batch-calls/{batch_id}")


def test_retry_failed_links_the_two_batches(ui: Watched, live_server: Served) -> None:
    page = ui.page
    busy = _agent(live_server, "Always busy", {"busy": 1})
    parent = _batch(live_server, ["+12025550381", "+12025550382"], busy)
    with live_server.client() as http:
        _wait(
            "the batch to end",
            lambda: http.get(f"/v1/api/batch-calls/{parent}/status").json()["isComplete"],
        )
    page.goto(f"{live_server.url}/#/batches/{parent}")
    page.wait_for_selector("#batch-status[data-status=completed]")
    assert page.locator("#batch-links").is_hidden()
    page.click("#actions [data-action=retry-failed]")
    link = page.locator("#retry-batches [data-batch-link]")
    link.wait_for()
    with live_server.client() as http:
        retries = http.get(f"/v1/api/batch-calls/{parent}").json()["retryBatchIds"]
    assert len(retries) == 1 and link.inner_text() == retries[0]
    ui.shot("11-retried-in")
    link.click()
    page.wait_for_selector(f"#parent-batch [data-batch-link='{parent}']")
    assert page.url.endswith(f"#/batches/{retries[0]}")
    ui.shot("12-retry-of")
    with live_server.client() as http:
        http.delete(f"/v1/api/batch-calls/{retries[0]}")


def test_a_running_batchs_share_is_changed_from_its_page(ui: Watched, live_server: Served) -> None:
    page = ui.page
    # Scheduled three days ahead: it stays queued, a batch that still runs.
    batch = _batch(
        live_server,
        ["+12025550391"],
        "agent_demo",
        scheduledAt=str(FUTURE_MS),
        maxConcurrency="2",
        priority="1",
    )
    try:
        page.goto(f"{live_server.url}/#/batches/{batch}")
        share = page.locator("#batch-share")
        expect(share).to_have_text("at most 2 calls live at once · priority 1")
        page.fill("#share-max-concurrency", "")
        page.fill("#share-priority", "9")
        page.click("#share-save")
        expect(share).to_have_text("the workspace's cap · priority 9")
        with live_server.client() as http:
            got = http.get(f"/v1/api/batch-calls/{batch}").json()
        assert (got["maxConcurrency"], got["priority"]) == (None, 9)
        # Out of range: the server refuses and names the field; nothing changes.
        page.fill("#share-priority", "101")
        page.click("#share-save")
        expect(page.locator("#banner")).to_contain_text("priority")
        with live_server.client() as http:
            assert http.get(f"/v1/api/batch-calls/{batch}").json()["priority"] == 9
    finally:
        with live_server.client() as http:
            http.delete(f"/v1/api/batch-calls/{batch}")


def test_the_new_batch_page_shows_the_agents_caller_numbers_and_warning(
    ui: Watched, live_server: Served
) -> None:
    page = ui.page
    with live_server.client() as http:
        answer = http.post(
            "/v1/api/agents",
            json={
                "name": "Pooled",
                "fromNumbers": ["+12125550100", "+13105550100"],
                "callerNumberLimits": {"+12125550100": {"callsPerSecond": 1}},
            },
        )
    assert answer.status_code == 201, answer.text
    agent = answer.json()["id"]
    page.click("#nav >> text=New batch")
    page.wait_for_selector(f"#agent option[value={agent}]", state="attached")
    page.select_option("#agent", agent)
    pool = page.locator("#agent-pool")
    expect(pool).to_contain_text("+12125550100 (1/s) · +13105550100")
    # Two numbers for the workspace's cap of concurrent calls: the server's warning.
    expect(pool.locator("[data-warning=pool]")).to_contain_text("2 caller numbers")
    page.select_option("#agent", "agent_demo")
    expect(pool).to_contain_text("No caller numbers")
