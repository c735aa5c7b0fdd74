"""What `serve` prints for a newcomer: curl lines whose JSON ends with a newline, and a
CLI line whose paths work as pasted in the directory `serve` runs in."""

from __future__ import annotations

from pathlib import Path

from dialbatch.bootstrap import Demo, cli_lines, curl_lines


def demo(csv: Path) -> Demo:
    return Demo("ws_demo", "dbk_secret", "agent_demo", csv, created=True)


def test_cli_line_uses_paths_relative_to_the_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    csv = (tmp_path / "data" / "demo-contacts.csv").resolve()
    text = cli_lines(
        demo(csv), "http://127.0.0.1:8000", cwd=tmp_path, program=".venv/bin/dialbatch"
    )
    lines = text.splitlines()
    assert lines[1] == "export DIALBATCH_API_KEY=dbk_secret DIALBATCH_WORKSPACE_ID=ws_demo"
    assert (
        lines[2] == ".venv/bin/dialbatch submit data/demo-contacts.csv --agent agent_demo --watch"
    )


def test_cli_line_elsewhere_uses_absolute_paths_and_the_url(tmp_path: Path) -> None:
    csv = (tmp_path / "demo contacts.csv").resolve()
    (tmp_path / "elsewhere").mkdir()
    text = cli_lines(
        demo(csv),
        "http://127.0.0.1:9000",
        cwd=tmp_path / "elsewhere",
        program=str(tmp_path / "dialbatch"),
    )
    assert "DIALBATCH_URL=http://127.0.0.1:9000" in text
    assert f"'{csv}'" in text  # quoted: the name has a space
    assert text.splitlines()[2].startswith(str((tmp_path / "dialbatch").resolve()))


def test_curl_lines_end_json_with_a_newline(tmp_path: Path) -> None:
    lines = curl_lines(demo(tmp_path / "d.csv"), "http://127.0.0.1:8000").splitlines()
    reads = [line for line in lines if line.startswith("curl ")]
    assert reads and all(line.startswith("curl -s -w '\\n' ") for line in reads)
