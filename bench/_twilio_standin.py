"""The Twilio stand-in (tests/providers/twilio/standin.py) as a process of its own, for
bench/chaos.py --provider twilio: it outlives the workers that are killed, and reports
what it received in the carrier's terms (`/ledger`, `/stats`), so the chaos checks apply.

    python bench/_twilio_standin.py --port 8100 --account AC... --token T --drop-final 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.providers.twilio.standin import (
    EXPECTED_OUTCOME,
    LIVE,
    Faults,
    SimCall,
    TwilioStandIn,
    mixed_plans,
    serve,
)

WEIGHTS = {"completed": 0.6, "busy": 0.15, "no-answer": 0.15, "failed": 0.1}


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def _dial_key(call: SimCall) -> str:
    query = parse_qs(urlsplit(call.status_callback or "").query)
    return query.get("dk", [""])[0]


def _outcome(call: SimCall) -> str | None:
    if call.status in LIVE:
        return None
    if call.status == "canceled":
        return "canceled"
    return EXPECTED_OUTCOME[call.plan.outcome]


def add_reports(standin: TwilioStandIn, workspace: str) -> None:
    async def ledger(_: Request) -> JSONResponse:
        return JSONResponse(
            [
                {
                    "dial_key": _dial_key(c),
                    "id": c.sid,
                    "outcome": _outcome(c),
                    "received_at": _ms(c.created),
                }
                for c in standin.calls.values()
            ]
        )

    async def stats(_: Request) -> JSONResponse:
        edges: list[tuple[int, int]] = []
        now = _ms(datetime.now(UTC)) or 0
        for c in standin.calls.values():
            edges += [(_ms(c.created) or 0, 1), (_ms(c.ended) or now + 1, -1)]
        live = peak = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            live += step
            peak = max(peak, live)
        body: dict[str, Any] = {
            "live": {workspace: sum(1 for c in standin.calls.values() if c.status in LIVE)},
            "max_live": {workspace: peak},
            "callbacks": dict(standin.stats),
        }
        return JSONResponse(body)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    standin.app.add_route("/ledger", ledger)
    standin.app.add_route("/stats", stats)
    standin.app.add_route("/healthz", healthz)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--workspace", default="ws_chaos")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--drop-final", type=float, default=0.05)
    p.add_argument("--ring", type=float, nargs=2, default=[0.5, 2.0])
    p.add_argument("--talk", type=float, nargs=2, default=[1.0, 4.0])
    args = p.parse_args()
    standin = TwilioStandIn(
        args.account,
        args.token,
        plan_for=mixed_plans(args.seed, WEIGHTS, tuple(args.ring), tuple(args.talk)),
        faults=Faults(drop_final=args.drop_final),
        seed=args.seed,
    )
    add_reports(standin, args.workspace)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    async with standin.running(), serve(standin.app, sock):
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main())
