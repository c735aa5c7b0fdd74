"""Webhook endpoints: add, list, read, remove; what is refused; the delivery log."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from dialbatch.settings import Settings
from tests.api.conftest import Harness, assert_error_shape, open_harness

WEBHOOKS = "/v1/api/webhooks"
PUBLIC = "https://93.184.216.34/hooks/dialbatch"  # a literal public address: no DNS


async def test_add_list_read_remove(api: Harness) -> None:
    r = await api.client.post(
        WEBHOOKS,
        headers=api.headers,
        json={"url": PUBLIC, "events": ["call.completed", "batch.completed"], "description": "x"},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["id"].startswith("wh_") and made["url"] == PUBLIC
    assert made["events"] == ["batch.completed", "call.completed"]
    secret = made["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32

    listed = (await api.client.get(WEBHOOKS, headers=api.headers)).json()["webhooks"]
    assert [w["id"] for w in listed] == [made["id"]]
    one = (await api.client.get(f"{WEBHOOKS}/{made['id']}", headers=api.headers)).json()
    assert "secret" not in one and "secret" not in listed[0]  # shown once only
    assert secret not in str(listed) + str(one)

    r = await api.client.delete(f"{WEBHOOKS}/{made['id']}", headers=api.headers)
    assert r.status_code == 200 and r.json() == {"id": made["id"], "deleted": True}
    assert (await api.client.get(WEBHOOKS, headers=api.headers)).json()["webhooks"] == []
    assert_error_shape(await api.client.get(f"{WEBHOOKS}/{made['id']}", headers=api.headers), 404)
    assert_error_shape(
        await api.client.delete(f"{WEBHOOKS}/{made['id']}", headers=api.headers), 404
    )
    # Its delivery log stays readable.
    r = await api.client.get(f"{WEBHOOKS}/{made['id']}/deliveries", headers=api.headers)
    assert r.status_code == 200 and r.json()["deliveries"] == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "ftp://93.184.216.34/x", "events": ["call.completed"]}, "http"),
        ({"url": "file:///etc/passwd", "events": ["call.completed"]}, "http"),
        ({"url": "javascript:alert(1)", "events": ["call.completed"]}, "http"),
        ({"url": "not a url", "events": ["call.completed"]}, "url"),
        ({"url": PUBLIC, "events": ["call.exploded"]}, "call.exploded"),
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC}, "events"),
        ({"events": ["call.completed"]}, "url"),
        ({"url": PUBLIC + "x" * 3000, "events": ["call.completed"]}, "url"),
        ({"url": PUBLIC, "events": ["call.completed"], "secret": "mine"}, "secret"),
        ({"url": "http://127.0.0.1/", "events": ["call.completed"]}, "127.0.0.1"),
        ({"url": "http://localhost:8080/h", "events": ["call.completed"]}, "loopback"),
        ({"url": "http://10.1.2.3/h", "events": ["call.completed"]}, "private"),
        ({"url": "http://169.254.169.254/latest", "events": ["call.completed"]}, "link-local"),
        ({"url": "http://[::1]:9/h", "events": ["call.completed"]}, "::1"),
        ({"url": "http://[::ffff:127.0.0.1]/h", "events": ["call.completed"]}, "loopback"),
    ],
)
async def test_bad_input_is_400_and_says_what_is_wrong(
    api: Harness, body: dict[str, object], words: str
) -> None:
    r = await api.client.post(WEBHOOKS, headers=api.headers, json=body)
    error = assert_error_shape(r, 400)
    assert words in error["message"], error
    assert (await api.client.get(WEBHOOKS, headers=api.headers)).json()["webhooks"] == []


async def test_a_private_url_is_accepted_only_when_the_setting_allows_it(
    make_settings: Callable[..., Settings],
) -> None:
    async with open_harness(make_settings(webhooks_allow_private=True, dispatch=False)) as h:
        r = await h.client.post(
            WEBHOOKS,
            headers=h.headers,
            json={"url": "http://127.0.0.1/", "events": ["call.failed"]},
        )
        assert r.status_code == 201, r.text


async def test_another_workspaces_webhook_reads_like_a_missing_one(api: Harness) -> None:
    r = await api.client.post(
        WEBHOOKS, headers=api.headers, json={"url": PUBLIC, "events": ["call.failed"]}
    )
    hook = r.json()["id"]
    other = await api.other_workspace()
    for method, path in [
        ("GET", f"{WEBHOOKS}/{hook}"),
        ("DELETE", f"{WEBHOOKS}/{hook}"),
        ("GET", f"{WEBHOOKS}/{hook}/deliveries"),
        ("POST", f"{WEBHOOKS}/{hook}/deliveries/1/replay"),
    ]:
        foreign = await api.client.request(method, path, headers=other)
        missing = await api.client.request(method, path.replace(hook, "wh_missing"), headers=other)
        assert_error_shape(foreign, 404)
        assert foreign.json()["error"] == missing.json()["error"]
    assert (await api.client.get(WEBHOOKS, headers=other)).json()["webhooks"] == []
    assert (await api.client.get(f"{WEBHOOKS}/{hook}", headers=api.headers)).status_code == 200


async def test_a_bad_delivery_filter_is_400(api: Harness) -> None:
    r = await api.client.post(
        WEBHOOKS, headers=api.headers, json={"url": PUBLIC, "events": ["call.failed"]}
    )
    hook = r.json()["id"]
    r = await api.client.get(
        f"{WEBHOOKS}/{hook}/deliveries", headers=api.headers, params={"status": "lost"}
    )
    assert "pending" in assert_error_shape(r, 400)["message"]
