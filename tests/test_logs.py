"""Structured logs: with `--log-format json` every line a process writes is one JSON object
a log collector can parse, with the fields it filters on."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from dialbatch import logs
from dialbatch.settings import Settings


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("dialbatch.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)


def test_json_lines_carry_ts_level_logger_msg_and_extra_fields(
    capture: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = capture
    handler.setFormatter(logs.JsonFormatter())
    logger.info("claimed %d calls", 5, extra={"workspace": "ws_a", "n": 5, "cps": 2.5})
    logger.warning('a "quoted"\nmessage', extra={"path": Path("/x")})

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # a newline in a message stays inside its line
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "info"
    assert first["logger"] == "dialbatch.test_logs"
    assert first["msg"] == "claimed 5 calls"
    assert (first["workspace"], first["n"], first["cps"]) == ("ws_a", 5, 2.5)
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    assert second["msg"] == 'a "quoted"\nmessage'
    assert second["path"] == "/x"  # not JSON-encodable: written as its str()


def test_json_line_keeps_the_traceback_and_its_own_fields_win(
    capture: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = capture
    handler.setFormatter(logs.JsonFormatter())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("round failed", extra={"level_hint": 1, "ts": "not mine"})
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "error"
    assert "RuntimeError: boom" in entry["exc"]
    assert entry["ts"] != "not mine"
    assert entry["level_hint"] == 1


def test_text_lines_append_extra_fields(
    capture: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = capture
    handler.setFormatter(logs.TextFormatter())
    logger.info("worker started", extra={"worker": "w-1", "note": "two words"})
    line = stream.getvalue().strip()
    assert "INFO dialbatch.test_logs: worker started" in line
    assert line.endswith('worker=w-1 note="two words"')


def test_setting_reads_the_environment_and_rejects_other_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIALBATCH_LOG_FORMAT", raising=False)
    assert Settings().log_format == "text"
    monkeypatch.setenv("DIALBATCH_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("DIALBATCH_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        Settings()


def test_worker_with_json_format_writes_only_json_lines(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "dialbatch"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALBATCH_")}
    env.update(DIALBATCH_DATA_DIR=str(tmp_path), DIALBATCH_LOG_LEVEL="info")
    proc = subprocess.Popen(
        [str(script), "worker", "--log-format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "worker started" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines.extend(rest.splitlines())
    entries = [json.loads(line) for line in lines if line.strip()]
    by_msg = {e["msg"]: e for e in entries}
    started = by_msg["worker started; SIGTERM drains and exits"]
    assert started["worker"].startswith("w-")
    assert by_msg["worker stopped"]["worker"] == started["worker"]
    assert proc.returncode == 0
    assert out == ""


def test_uvicorns_coloured_copy_of_the_message_is_not_a_field() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "Started %d", (1,), None)
    record.color_message = "Started \x1b[36m%d\x1b[0m"
    record.worker = "w-1"
    assert logs.extra_fields(record) == {"worker": "w-1"}
