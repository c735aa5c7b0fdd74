"""The wire contract is written once and held to it: what the handlers send matches the
pydantic models of api/schemas.py (which the OpenAPI document is made from) key for key, and
the SDK's TypedDicts (client/types.py) agree with those models.

A field added to a handler but not to its model (so missing from the OpenAPI document), or
to the model but not to the client's type, fails here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

import pytest
import pytest_asyncio
from pydantic import BaseModel, ValidationError

from dialbatch.api import schemas
from dialbatch.api.routers import agents, suppressions
from dialbatch.client import types as client
from dialbatch.settings import Settings
from tests.api.conftest import (
    BASE,
    Frozen,
    frozen_batch,
    get_batch,
    get_call,
    list_all_calls,
    numbers,
    start_batch,
    status_of,
)

# Each response model and the SDK's type for the same shape.
PAIRS: list[tuple[type[BaseModel], type]] = [
    (schemas.StartBatchResponse, client.StartBatchResult),
    (schemas.BatchResponse, client.Batch),
    (schemas.GateCounts, client.GateCounts),
    (schemas.Progress, client.Progress),
    (schemas.RecentCall, client.RecentCall),
    (schemas.ProgressResponse, client.BatchProgress),
    (schemas.CallList, client.CallPage),
    (schemas.CallItem, client.Call),
    (schemas.Pagination, client.Pagination),
    (schemas.Summary, client.Summary),
    (schemas.CallDetail, client.CallDetail),
    (schemas.CallResult, client.CallResult),
    (schemas.AttemptEntry, client.AttemptEntry),
    (schemas.Consent, client.Consent),
    (schemas.FailureStop, client.FailureStop),
    (schemas.ValidateResponse, client.ValidateResult),
    (schemas.TimeZoneCount, client.TimeZoneCount),
    (schemas.RunEstimate, client.RunEstimate),
    (schemas.BatchLimitsResponse, client.BatchLimits),
    (schemas.CancelResponse, client.CancelResult),
    (schemas.CancelDetails, client.CancelDetails),
    (schemas.BatchPage, client.BatchPage),
    (schemas.BatchSummary, client.BatchSummary),
    (agents.CreatedAgentOut, client.Agent),
    (suppressions.SuppressionOut, client.Suppression),
    (suppressions.SuppressionPage, client.SuppressionPage),
]
TYPE_OF = {model: typed for model, typed in PAIRS}
# Fields the model requires but the client's type may lack, and why.
ONLY_SOMETIMES = {
    # only in create_agent's answer (the listing's AgentOut has no secret)
    ("CreatedAgentOut", "signingSecret"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def frozen(
    template_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Frozen]:
    directory = tmp_path_factory.mktemp("shapes")

    def settings_for(db: Path) -> Settings:
        return Settings(
            database_url=f"sqlite:///{db}",
            data_dir=directory,
            simulated_time_scale=0.002,
            demo_max_concurrent_calls=3,
            demo_calls_per_second=200,
            poll_interval_s=0.02,
            retry_backoff_ms=10,
            demo_api_key="test-key-demo-0001",
        )

    async with frozen_batch(settings_for, directory, template_db) as found:
        yield found


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional and list), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def strict_problems(model: type[BaseModel], data: Any, where: str) -> list[str]:
    """Validates, and every key sent (at every depth) is a field of the model."""
    problems = []
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems.append(f"{where}: {exc}")
    if not isinstance(data, dict):
        return problems
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            problems.append(f"{where}.{key} is sent but {model.__name__} lacks it")
            continue
        nested = _model_in(field.annotation)
        if nested is not None and value is not None:
            for item in value if isinstance(value, list) else [value]:
                problems += strict_problems(nested, item, f"{where}.{key}")
    return problems


@pytest.mark.asyncio(loop_scope="module")
async def test_every_handler_sends_exactly_its_documented_model(frozen: Frozen) -> None:
    h, batch_id = frozen.h, frozen.batch_id
    calls = await list_all_calls(h, batch_id)
    by_status = {c["status"]: c for c in calls}
    assert {"waiting", "active", "completed", "failed"} <= set(by_status)
    sent: list[tuple[type[BaseModel], Any, str]] = [
        (schemas.BatchResponse, await get_batch(h, batch_id), "GET batch"),
        (schemas.ProgressResponse, await status_of(h, batch_id), "GET status"),
    ]
    for page in ({"limit": 100}, {"status": "failed"}, {"page": 99}):
        r = await h.client.get(f"{BASE}/{batch_id}/calls", headers=h.headers, params=page)
        sent.append((schemas.CallList, r.json(), f"GET calls {page}"))
    for status, call in by_status.items():
        sent.append((schemas.CallDetail, await get_call(h, batch_id, call["jobId"]), status))
    listing = await h.client.get(BASE, headers=h.headers)
    sent.append((schemas.BatchPage, listing.json(), "GET batches"))
    started = await start_batch(h, [*numbers(2), "not a number"], skipInvalid="true")
    assert started.status_code == 200, started.text
    sent.append((schemas.StartBatchResponse, started.json(), "POST batch (skipInvalid)"))
    new_id = started.json()["batchId"]
    for hangup in ("false", "true"):
        r = await h.client.delete(
            f"{BASE}/{new_id if hangup == 'false' else batch_id}",
            headers=h.headers,
            params={"hangupActive": hangup},
        )
        assert r.status_code == 200, r.text
        sent.append((schemas.CancelResponse, r.json(), f"DELETE hangupActive={hangup}"))
    problems = [p for model, body, where in sent for p in strict_problems(model, body, where)]
    assert not problems, "\n".join(problems)


def _shape(annotation: Any) -> tuple[Any, bool]:
    """(a comparable form of a type, whether it allows None)."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner, _ = _shape(args[0] if len(args) == 1 else typing.Union[tuple(args)])  # noqa: UP007
        return inner, len(args) < len(get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("object", TYPE_OF[annotation].__name__), False
    if is_typeddict(annotation):
        return ("object", annotation.__name__), False
    origin = get_origin(annotation)
    if origin is not None:
        return (origin.__name__, *(_shape(a)[0] for a in get_args(annotation))), False
    return getattr(annotation, "__name__", str(annotation)), False


@pytest.mark.parametrize(("model", "typed"), PAIRS, ids=lambda p: p.__name__)
def test_the_clients_types_agree_with_the_models(model: type[BaseModel], typed: type) -> None:
    hints = get_type_hints(typed)
    required: frozenset[str] = typed.__required_keys__  # type: ignore[attr-defined]
    problems = []
    for name in sorted(set(hints) | set(model.model_fields)):
        field = model.model_fields.get(name)
        if field is None:
            problems.append(f"{typed.__name__}.{name}: not in {model.__name__}")
            continue
        if name not in hints:
            problems.append(f"{model.__name__}.{name}: missing from {typed.__name__}")
            continue
        ours, ours_nullable = _shape(field.annotation)
        theirs, theirs_nullable = _shape(hints[name])
        if ours != theirs:
            problems.append(f"{name}: {model.__name__} says {ours}, {typed.__name__} {theirs}")
        if (
            field.is_required()
            and name not in required
            and (model.__name__, name) not in ONLY_SOMETIMES
        ):
            problems.append(f"{name}: always sent, but NotRequired in {typed.__name__}")
        if ours_nullable and field.is_required() and not theirs_nullable:
            problems.append(f"{name}: may be null, but {typed.__name__} says it is not")
    assert not problems, "\n".join(problems)
