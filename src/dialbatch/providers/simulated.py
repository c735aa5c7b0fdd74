"""A simulated carrier for demos, tests and load: realistic outcomes and durations drawn
from a distribution set on the agent, reproducible per dial from a seed, delivered later
through the same sink real adapters use.

Agent `provider_config` keys (all optional):
  outcomes: {"completed": .6, "busy": .1, "no-answer": .15, "voicemail": .1, "failed": .05}
  seed: int; meanTalkSeconds: float (45); ringSeconds: [min, max] ([2, 12]);
  ringTimeoutSeconds: float (30); startErrorRate: float (0): share of dials refused outright.
  script: {"+15550001": ["busy", "busy", "completed"], ...}: the n-th dial to that number
    ends with the n-th outcome ("refused": the carrier refuses it), the last one repeating;
    for tests that need each number to behave exactly so. Other numbers draw as above.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass
from typing import Any

from dialbatch.domain.ids import now_ms
from dialbatch.domain.outcomes import CallEvent, Outcome
from dialbatch.providers.base import (
    DialLookup,
    DialNotFound,
    DialRequest,
    EventSink,
    Live,
    OutcomeUnknowable,
    ProviderError,
)
from dialbatch.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_OUTCOMES: dict[str, float] = {
    "completed": 0.6,
    "busy": 0.1,
    "no-answer": 0.15,
    "voicemail": 0.1,
    "failed": 0.05,
}


MAX_SECONDS = 7 * 24 * 3600  # simulated seconds; tests use long rings to hold calls active


class SimulatedConfigError(ValueError):
    pass


def build(settings: Settings, sink: EventSink) -> SimulatedProvider:
    """Always available: the demo and the tests dial through it."""
    return SimulatedProvider(
        sink, time_scale=settings.simulated_time_scale, seed=settings.demo_seed
    )


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check an agent's simulated-provider settings when the agent is created, so that
    every dial it makes can be drawn."""
    outcomes = config.get("outcomes", DEFAULT_OUTCOMES)
    if not isinstance(outcomes, dict) or not outcomes:
        raise SimulatedConfigError("outcomes must be an object of outcome -> weight")
    for key, weight in outcomes.items():
        if key not in {o.value for o in Outcome} - {"canceled"}:
            raise SimulatedConfigError(f"unknown outcome {key!r}")
        if not _is_number(weight) or weight < 0:
            raise SimulatedConfigError(f"weight of {key!r} must be a non-negative number")
    if not 0 < sum(outcomes.values()) < float("inf"):
        raise SimulatedConfigError("outcome weights must add up to a positive, finite number")
    for key, high in (("meanTalkSeconds", MAX_SECONDS), ("ringTimeoutSeconds", MAX_SECONDS)):
        value = config.get(key)
        if value is not None and (not _is_number(value) or not 0 <= value <= high):
            raise SimulatedConfigError(f"{key} must be a number from 0 to {high}")
    rate = config.get("startErrorRate")
    if rate is not None and (not _is_number(rate) or not 0 <= rate <= 1):
        raise SimulatedConfigError("startErrorRate must be a number from 0 to 1")
    _validate_script(config.get("script"))
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SimulatedConfigError("seed must be a whole number")
    ring = config.get("ringSeconds")
    if ring is not None and not (
        isinstance(ring, list)
        and len(ring) == 2
        and all(_is_number(v) and 0 <= v <= MAX_SECONDS for v in ring)
        and ring[0] <= ring[1]
    ):
        raise SimulatedConfigError(
            f"ringSeconds must be [min, max] seconds, 0 <= min <= max <= {MAX_SECONDS}"
        )
    return config


REFUSED = "refused"
MAX_SCRIPT = 50


def _validate_script(script: object) -> None:
    if script is None:
        return
    words = ({o.value for o in Outcome} - {"canceled"}) | {REFUSED}
    if not isinstance(script, dict) or not all(
        isinstance(number, str)
        and isinstance(steps, list)
        and 0 < len(steps) <= MAX_SCRIPT
        and all(step in words for step in steps)
        for number, steps in script.items()
    ):
        raise SimulatedConfigError(
            f"script must map numbers to lists of 1 to {MAX_SCRIPT} of {sorted(words)}"
        )


def scripted_outcome(cfg: dict[str, Any], to: str | None, dial_key: str) -> str | None:
    """What the agent's `script` says the dial ends with (an outcome or "refused"): the
    n-th dial to a number (n from the dial key) takes the n-th step, the last repeating.
    None when the number has no script. Reconstructible from the dial alone."""
    steps = (cfg.get("script") or {}).get(to or "")
    if not steps:
        return None
    attempt = dial_key.rsplit(":", 1)[-1]
    n = int(attempt) if attempt.isdigit() else 1
    return str(steps[min(max(n, 1), len(steps)) - 1])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class _SimCall:
    provider_call_id: str
    request: DialRequest
    event: CallEvent
    ends_at_ms: int
    handle: asyncio.TimerHandle | None = None
    ended: bool = False
    started_at_ms: int = 0


class SimulatedProvider:
    name = "simulated"
    follows_in_memory = True

    def __init__(self, sink: EventSink, *, time_scale: float = 1.0, seed: int = 7) -> None:
        self._sink = sink
        self._scale = time_scale
        self._seed = seed
        self._calls: dict[str, _SimCall] = {}  # by dial_key
        self._by_id: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.dials = 0  # every start_call that rang a (simulated) phone
        # Every dial received, in order: (dial_key, to, refused at ms; None: placed).
        self._received: list[tuple[str, str, int | None]] = []

    async def start_call(self, request: DialRequest) -> str:
        existing = self._calls.get(request.dial_key)
        if existing is not None:
            return existing.provider_call_id
        try:
            pcid, event, delay_s = self._draw(request.dial_key, request.agent_config, request)
        except ProviderError:
            self._received.append((request.dial_key, request.to, now_ms()))
            raise
        self._follow(request, pcid, event, now_ms(), delay_s)
        self.dials += 1
        return pcid

    def _draw(
        self, key: str, cfg: dict[str, Any], request: DialRequest | None, to: str | None = None
    ) -> tuple[str, CallEvent, float]:
        """Everything about a dial, from its seed alone: (call id, final event, seconds
        from start to end); raises ProviderError for a dial the carrier refuses. Drawn
        the same in any process, so a dial outlives the process that placed it."""
        rng = random.Random(f"{cfg.get('seed', self._seed)}:{key}")
        scripted = scripted_outcome(cfg, request.to if request else to, key)
        if rng.random() < float(cfg.get("startErrorRate", 0.0)) or scripted == REFUSED:
            raise ProviderError("simulated carrier refused the request (503)")
        forced = Outcome(scripted) if scripted else None
        outcome, ring_s, talk_s = _draw(rng, cfg, forced)
        pcid = f"sim_{rng.getrandbits(64):016x}"
        result = None
        if outcome is Outcome.COMPLETED:
            result = _result_for(request.metadata if request else {}, pcid)
        event = CallEvent(
            outcome=outcome,
            dial_key=key,
            provider_call_id=pcid,
            duration_s=round(talk_s, 1) if talk_s else None,
            provider_code=_CODES[outcome],
            detail=outcome_detail(outcome, _CODES[outcome]),
            result=result,
        )
        return pcid, event, (ring_s + talk_s) * self._scale

    def _follow(
        self, request: DialRequest, pcid: str, event: CallEvent, start_ms: int, delay_s: float
    ) -> _SimCall:
        call = _SimCall(
            pcid,
            request,
            event,
            ends_at_ms=start_ms + int(delay_s * 1000),
            started_at_ms=start_ms,
        )
        self._calls[request.dial_key] = call
        self._received.append((request.dial_key, request.to, None))
        self._by_id[pcid] = request.dial_key
        remaining = max(0.0, (call.ends_at_ms - now_ms()) / 1000)
        call.handle = asyncio.get_running_loop().call_later(remaining, self._finish, call, None)
        return call

    def _finish(self, call: _SimCall, override: CallEvent | None) -> None:
        if call.ended:
            return
        call.ended = True
        if override is not None:
            call.event = override
        event = CallEvent(**{**call.event.__dict__, "ended_at": now_ms()})
        call.event = event
        task = asyncio.get_running_loop().create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: CallEvent) -> None:
        try:
            await self._sink(event)
        except Exception:  # the sweeper reconciles through fetch_status later
            log.exception("simulated provider: delivering %s failed", event.dial_key)

    def record(self, dial_key: str) -> tuple[DialRequest, CallEvent, bool] | None:
        """The carrier's record of a dial it placed: (what was asked, its final event as
        drawn, whether it has ended); None if it never placed it. Tests hold the engine's
        ledger against it."""
        call = self._calls.get(dial_key)
        return None if call is None else (call.request, call.event, call.ended)

    def ledger(self) -> list[dict[str, Any]]:
        """Every dial this carrier received, in the order received: the ones it placed
        (with their caller number, start, end and final event) and the ones it refused (outcome
        "refused", nothing placed). Tests hold the engine's record against it."""
        rows: list[dict[str, Any]] = []
        for key, to, refused_at in self._received:
            call = self._calls.get(key)
            if refused_at is not None:
                rows.append(
                    {
                        "dialKey": key,
                        "to": to,
                        "startedAt": refused_at,
                        "endedAt": refused_at,
                        "outcome": "refused",
                    }
                )
            elif call is not None:
                rows.append(
                    {
                        "dialKey": key,
                        "to": call.request.to,
                        "from": call.request.from_,
                        "startedAt": call.started_at_ms,
                        "endedAt": call.event.ended_at if call.ended else None,
                        "outcome": call.event.outcome.value,
                        "providerCallId": call.provider_call_id,
                        "providerCode": call.event.provider_code,
                    }
                )
        return rows

    async def hangup(self, provider_call_id: str) -> None:
        key = self._by_id.get(provider_call_id)
        call = self._calls.get(key) if key else None
        if call is None or call.ended:
            return
        if call.handle is not None:
            call.handle.cancel()
        self._finish(
            call,
            CallEvent(
                outcome=Outcome.CANCELED,
                dial_key=call.request.dial_key,
                provider_call_id=provider_call_id,
                provider_code="487",
            ),
        )

    async def fetch_status(self, dial_key: str, provider_call_id: str | None) -> CallEvent | Live:
        call = self._calls.get(dial_key)
        if call is None:
            # This carrier lives in a process: after a restart it remembers nothing of the
            # calls it held. find_dial recomputes them.
            raise OutcomeUnknowable("the simulated carrier has no record (process restarted?)")
        if not call.ended:
            return Live(call.provider_call_id)
        return call.event

    async def find_dial(self, lookup: DialLookup) -> CallEvent | Live:
        """A dial placed by another process (or before a restart), recomputed from its seed
        and its start time: ended by now, its final event; still live, adopted here, and
        its outcome delivered when it ends, as if this process had placed it."""
        known = self._calls.get(lookup.dial_key)
        if known is not None:
            return known.event if known.ended else Live(known.provider_call_id)
        if lookup.started_at_ms is None:
            raise OutcomeUnknowable("the dial's start time is not known")
        try:
            pcid, event, delay_s = self._draw(lookup.dial_key, lookup.agent_config, None, lookup.to)
        except ProviderError as exc:
            raise DialNotFound("the simulated carrier refused this dial") from exc
        ends_at = lookup.started_at_ms + int(delay_s * 1000)
        if ends_at <= now_ms():
            return CallEvent(**{**event.__dict__, "ended_at": ends_at})
        request = DialRequest(
            dial_key=lookup.dial_key,
            job_id=lookup.dial_key.rsplit(":", 1)[0],
            to=lookup.to,
            from_=lookup.from_,
            metadata={},
            agent_id="",
            agent_config=lookup.agent_config,
        )
        self._follow(request, pcid, event, lookup.started_at_ms, delay_s)
        return Live(pcid)

    async def aclose(self) -> None:
        """Stop scheduling outcomes, and let deliveries already under way finish.

        They are not cancelled: a delivery cancelled inside its write transaction would roll
        back over a connection the caller is about to close, and never finish.
        """
        for call in self._calls.values():
            if call.handle is not None:
                call.handle.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._calls.clear()
        self._by_id.clear()


_CODES = {
    Outcome.COMPLETED: "200",
    Outcome.BUSY: "486",
    Outcome.NO_ANSWER: "480",
    Outcome.VOICEMAIL: "200",
    Outcome.FAILED: "503",
    Outcome.CANCELED: "487",
}


# Reason phrases of the SIP codes above, so that a simulated busy reads like a real one.
_REASONS = {"486": "Busy Here", "480": "Temporarily Unavailable", "487": "Request Terminated"}


def outcome_detail(outcome: Outcome, code: str | None) -> str | None:
    """The detail beside a simulated outcome's words: `Number busy (SIP 486 Busy Here)`.

    A failure keeps the plain `Call failed` (domain.retry.final_reason lets a failure's
    detail lead), a completed call has no error, and a cancel is our own doing.
    """
    if outcome in (Outcome.COMPLETED, Outcome.FAILED, Outcome.CANCELED):
        return None
    if outcome is Outcome.VOICEMAIL:
        return "simulated answering machine"
    if not code:
        return None
    return f"SIP {code} {_REASONS.get(code, '')}".strip()


def _draw(
    rng: random.Random, cfg: dict[str, Any], forced: Outcome | None = None
) -> tuple[Outcome, float, float]:
    """(outcome, ringing seconds, talk seconds); `forced` (a script's step) replaces the
    drawn outcome, the random sequence staying the same."""
    weights = cfg.get("outcomes") or DEFAULT_OUTCOMES
    names = list(weights)
    outcome = Outcome(rng.choices(names, weights=[float(weights[n]) for n in names])[0])
    outcome = forced or outcome
    ring_lo, ring_hi = cfg.get("ringSeconds", [2.0, 12.0])
    ring = rng.uniform(float(ring_lo), float(ring_hi))
    mean_talk = float(cfg.get("meanTalkSeconds", 45.0))
    if outcome is Outcome.COMPLETED:
        return outcome, ring, max(3.0, rng.gauss(mean_talk, mean_talk / 3))
    if outcome is Outcome.VOICEMAIL:
        return outcome, ring, rng.uniform(8.0, 30.0)
    if outcome is Outcome.NO_ANSWER:
        return outcome, float(cfg.get("ringTimeoutSeconds", 30.0)), 0.0
    if outcome is Outcome.BUSY:
        return outcome, rng.uniform(0.5, 4.0), 0.0
    return outcome, rng.uniform(0.2, 3.0), 0.0


# Column names a CSV may give the contact's name under, best first (compared lower-case,
# with spaces and dashes read as underscores): a first name reads better in a greeting.
_NAME_COLUMNS = (
    "first_name",
    "firstname",
    "first",
    "given_name",
    "name",
    "full_name",
    "fullname",
    "contact_name",
    "customer_name",
    "contact",
)


def contact_name(metadata: dict[str, Any]) -> str | None:
    """The contact's name from whatever name column the CSV has (`first_name`, `Name`,
    `First Name`, ...); None when it has none or it is empty."""
    found: dict[str, str] = {}
    for key, value in metadata.items():
        normal = "_".join(str(key).strip().lower().replace("-", " ").split())
        text = str(value).strip() if value is not None else ""
        if normal in _NAME_COLUMNS and text:
            found.setdefault(normal, text)
    return next((found[c] for c in _NAME_COLUMNS if c in found), None)


def _result_for(meta: dict[str, Any], pcid: str) -> dict[str, Any]:
    name = contact_name(meta) or "there"
    transcript = (
        f"Agent: Hello {name}, this is an automated call from dialbatch.\n"
        f"Customer: Hi, yes, this is {name}.\n"
        "Agent: Thanks for taking the call. I'm confirming your details on file.\n"
        "Customer: Sounds good, thank you.\n"
        "Agent: All set. Have a great day!"
    )
    return {"callId": pcid, "transcript": transcript, "outcome": "successful"}
