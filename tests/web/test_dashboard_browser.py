"""The dashboard in a real browser against `dialbatch serve`: what a campaign manager does,
start to end, with screenshots of each page under the test's tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.web.conftest import Served

# Twelve rows, row 4 (spreadsheet numbering) unusable: no country code.
GOOD = [f"+1202555{i:04d}" for i in range(110, 121)]
CSV = "phone_number,first_name\n" + "\n".join(
    [f"{GOOD[0]},Ada", f"{GOOD[1]},Alan", "12345,Nobody", *[f"{n},Grace" for n in GOOD[2:]]]
)
BAD_ROW = 4


def _half_busy_agent(server: Served) -> str:
    """An agent whose calls end completed or busy at even odds: the batch has both."""
    with server.client() as http:
        answer = http.post(
            "/v1/api/agents",
            json={
                "name": "Half busy",
                "providerConfig": {"outcomes": {"completed": 1, "busy": 1}, "seed": 11},
            },
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_campaign_from_sign_in_to_transcript(
    browser: Any, live_server: Served, tmp_path: Path
) -> None:
    agent_id = _half_busy_agent(live_server)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The browser logs every 4xx as an error; the refused key, file and token route are
    # expected. Anything else the page logs as an error is not.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.set_default_timeout(45_000)

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # Sign in: a wrong key is refused with a message that says so.
    page.goto(f"{live_server.url}/")
    page.fill("#workspace", live_server.workspace_id)
    page.fill("#apikey", "not-the-key")
    page.click("#signin button[type=submit]")
    message = page.locator("#signin-error")
    message.wait_for()
    assert "Wrong workspace id or API key" in message.inner_text()
    assert not page.is_visible("#nav") and not page.is_visible("#signout")
    shot("01-wrong-key")
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#apikey", live_server.api_key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("text=No batch yet")
    assert page.is_visible("#nav") and page.inner_text("#who") == live_server.workspace_id
    assert page.evaluate("document.cookie") == ""
    # A reload would lose this mark: the page must change without one from here on.
    page.evaluate("window.__sameDocument = true")
    shot("02-no-batches")

    # New batch: the bad row is shown next to the file, and nothing is created.
    page.click("text=New batch")
    page.wait_for_selector(f"#agent option[value='{agent_id}']", state="attached")
    page.set_input_files(
        "#file", files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.select_option("#agent", agent_id)
    page.click("#create")
    table = page.locator("#problems-table")
    table.wait_for()
    cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == str(BAD_ROW) and cells[1] == "phone_number" and cells[3] == "12345"
    assert "country code" in cells[2]
    assert page.locator("[data-fix=defaultCountry]").is_visible()
    shot("03-problems")
    with live_server.client() as http:
        assert http.get("/v1/api/batch-calls").json()["pagination"]["total"] == 0

    # Fixed with the offered control: the batch is created without the bad row.
    page.click("[data-fix=skipInvalid]")
    assert page.is_checked("#skipInvalid")
    page.click("#create")
    page.wait_for_selector("#batch-status")
    assert "1 row left out" in page.inner_text("#created")
    first_seen = page.get_attribute("#batch-status", "data-status")
    shot("04-batch-running")

    # It reaches `completed` while we watch, without a reload.
    page.wait_for_selector("#batch-status[data-status=completed]", timeout=90_000)
    assert first_seen != "completed", "the batch finished before the page could show it running"
    assert page.evaluate("window.__sameDocument") is True
    mode = page.get_attribute("#live", "data-mode")
    assert mode in ("live", "polling")
    stats = page.locator("#stats")
    assert stats.locator("[data-stat=Calls]").inner_text() == str(len(GOOD))
    completed = int(stats.locator("[data-stat=Completed]").inner_text())
    failed = int(stats.locator("[data-stat=Failed]").inner_text())
    assert completed + failed == len(GOOD) and completed > 0 and failed > 0
    assert stats.locator("[data-stat='Average duration']").inner_text().endswith(" s")
    # the chart has drawn both areas, the table lists the calls
    page.wait_for_selector("#chart svg path.area.failed")
    assert f"{len(GOOD)} calls finished" in page.inner_text("#chart")
    assert page.locator("#calls tbody tr").count() == len(GOOD)
    assert page.locator("#recent li").count() == min(10, len(GOOD))
    shot("05-batch-completed")

    # Failed calls only, then one of them.
    page.select_option("#status-filter", "failed")
    expect(page.locator("#calls tbody tr")).to_have_count(failed, timeout=45_000)
    statuses = page.locator("#calls tbody tr [data-status]").all_inner_texts()
    assert statuses == ["failed"] * failed
    assert "status=failed" in page.url
    shot("06-failed-calls")
    page.locator("#calls tbody tr").first.click()
    detail = page.locator("#call-detail")
    detail.wait_for()
    page.wait_for_selector("#call-detail dd >> text=Number busy")
    assert "Attempts" in detail.inner_text()
    shot("07-failed-call")

    # A completed call's transcript. (The API gives a result only with a completed call.)
    page.click("#close-detail")
    page.select_option("#status-filter", "completed")
    expect(page.locator("#calls tbody tr")).to_have_count(completed, timeout=45_000)
    page.locator("#calls tbody tr").first.click()
    transcript = page.locator("#transcript")
    transcript.wait_for()
    text = transcript.inner_text()
    assert text.startswith("Agent: Hello ") and "Customer:" in text
    assert page.locator("#result-fields").inner_text().count("successful") == 1
    shot("08-transcript")

    # Back to the list: the batch is there with its finished bar.
    page.click("text=Batches")
    row = page.locator("tr[data-batch]")
    row.wait_for()
    assert row.locator("[data-status=completed]").count() >= 1
    shot("09-batches")
    assert page.evaluate("window.__sameDocument") is True

    # Nothing but this server was asked for anything.
    assert requests
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or parts.hostname == "127.0.0.1", url
    assert not errors, errors
    for name in ("01-wrong-key", "03-problems", "05-batch-completed", "08-transcript"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
    context.close()
