"""`dialbatch carrier`: run the simulated carrier as its own process.

Its calls outlive the workers that place them, it records every dial it receives
(`GET /ledger`, `GET /stats`), and it reports progress and outcomes as signed callbacks to
the API (`--callback-url`, usually <api>/v1/providers/carrier/callbacks).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer


def carrier(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8090,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    callback_url: Annotated[
        str | None,
        typer.Option(help="Where to POST callbacks (the API's /v1/providers/carrier/callbacks)"),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="Callback signing secret (DIALBATCH_CARRIER_SECRET)", show_default=False),
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="SQLite file keeping the ledger across restarts")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(min=0.0001, help="Simulated seconds -> real seconds")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Default seed of the outcome draws")] = 7,
    drop_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of callbacks never sent")
    ] = 0.0,
    duplicate_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of callbacks sent twice")
    ] = 0.0,
    callback_retry_s: Annotated[
        float, typer.Option(help="Keep retrying a failed callback for this long")
    ] = 600.0,
    log_level: Annotated[str, typer.Option(help="Log level")] = "warning",
) -> None:
    """Run the simulated carrier (calls that outlive workers, a ledger of every dial)."""
    import uvicorn

    from dialbatch.testing.carrier import Carrier, CarrierConfig, create_app

    key = secret or os.environ.get("DIALBATCH_CARRIER_SECRET", "")
    if callback_url and not key:
        typer.echo("error: --secret (or DIALBATCH_CARRIER_SECRET) is needed to sign", err=True)
        raise typer.Exit(1)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    config = CarrierConfig(
        callback_url=callback_url,
        secret=key,
        time_scale=time_scale,
        seed=seed,
        drop_rate=drop_rate,
        duplicate_rate=duplicate_rate,
        callback_retry_s=callback_retry_s,
        state_path=state,
    )
    uvicorn.run(create_app(Carrier(config)), host=host, port=port, log_level=log_level.lower())


def register(app: typer.Typer) -> None:
    """Add `carrier` to the `dialbatch` command."""
    app.command()(carrier)


if __name__ == "__main__":
    typer.run(carrier)
