"""Ingest benchmark: POST a ~20 MB, ~300k-row CSV to the real server and time its acceptance.

Starts `dialbatch serve` (bench/_server.py) on a temporary data directory, generates a
realistic contact list (E.164 numbers, mostly +1 with real area codes, plus name, email,
company, city and notes columns, about 67 bytes a row), and POSTs it as multipart to
`/v1/api/batch-calls` with httpx, `--runs` times (a fresh batch each time, same server).
Each run prints the client's wall time of the POST, rows/s and the server's peak RSS during
that run; then the medians. One more run uploads national numbers ("(212) 555-0123") with
`defaultCountry=US`.

`--timezone-column SHARE` puts a `timezone` column (IANA names, validated at ingest and kept
on each call) in place of `notes`, filled on that share of the rows and empty on the others;
at 0.3 the file keeps its ~20 MB (the upload limit). `--validate-runs N`
also POSTs the file N times to `/v1/api/batch-calls/validate`, which validates every row and
infers the time zones of every number (the create itself infers none: the gate does, per
claim); its time is printed beside the uploads'.

Batches are scheduled ~300 days ahead so the dispatcher does not dial them (`--start-now`
starts them at once, at the workspace's `--cps`).

    .venv/bin/python bench/ingest.py                      # SQLite, the embedded default
    .venv/bin/python bench/ingest.py --rows 50000 --runs 1
    .venv/bin/python bench/ingest.py --database-url postgresql://127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (
    AGENT,
    MB,
    Server,
    add_wait_quiet,
    print_load,
    print_machine,
    run_server,
    wait_until_quiet,
)

TARGET_SECONDS = 4.0
TARGET_RSS_MB = 250.0
POST_TIMEOUT_S = 600.0


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Real, assigned NANP area codes (all accepted by phonenumbers with exchanges 200-999).
AREA_CODES = _words(
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 "
    "234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 "
    "308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 "
    "352 360 361 385 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 "
    "425 430 432 434 435 440 443 469 470 475 478 479 480 484 501 502 503 504 505 507 508 509 "
    "510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 567 570 571 573 574 575 "
    "580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 "
    "630 631 636 641 646 650 651 657 660 661 662 678 682 701 702 703 704 706 707 708 712 713 "
    "714 715 716 717 718 719 720 724 727 731 732 734 740 754 757 760 763 765 770 772 773 774 "
    "775 781 785 786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 "
    "832 843 845 847 848 850 856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 "
    "907 908 909 910 912 913 914 915 916 917 918 919 920 925 928 931 936 937 940 941 947 949 "
    "951 952 954 956 970 971 972 973 978 979 980 985 989"
)
# A few non-NANP numbers (UK drama range, French and German mobiles, Australian fiction
# range, Indian mobiles): the tail of a real list, and the slower multi-region paths.
INTERNATIONAL = (
    ("+44207946", 4),
    ("+3367", 7),
    ("+49151", 8),
    ("+61491570", 3),
    ("+9198", 8),
)
FIRST = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Wei Nancy Ahmed "
    "Betty Mark Sandra Luis Ashley Paul Emily Kevin Donna Brian Michelle Jose Maria Juan Ana"
)
LAST = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Nguyen Hill Kim"
)
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "aol.com", "icloud.com", "acme.io")
COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Ind", "Wayne Ent", "Vandelay",
    "Soylent", "Cyberdyne", "Tyrell", "Wonka", "Pied Piper", "Dunder", "",
)  # fmt: skip
CITIES = (
    "Austin", "Boston", "Chicago", "Denver", "Houston", "Miami", "Phoenix", "Seattle",
    "Atlanta", "Portland", "Dallas", "San Diego", "New York", "Tampa", "Omaha",
)  # fmt: skip
NOTES = ("", "", "", "vip", "renewal", "callback", "demo req", "Q3 lead", "no voicemail")
ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Phoenix", "America/Anchorage", "Pacific/Honolulu", "Europe/London",
)  # fmt: skip


@dataclass(frozen=True)
class Generated:
    path: Path
    rows: int
    size: int


def e164_number(rng: random.Random) -> str:
    if rng.random() < 0.05:
        prefix, digits = rng.choice(INTERNATIONAL)
        return prefix + "".join(rng.choice("0123456789") for _ in range(digits))
    return "+1" + _nanp(rng)


def national_number(rng: random.Random) -> str:
    ten = _nanp(rng)
    form = rng.randrange(4)
    if form == 0:
        return f"({ten[:3]}) {ten[3:6]}-{ten[6:]}"
    if form == 1:
        return f"{ten[:3]}-{ten[3:6]}-{ten[6:]}"
    if form == 2:
        return f"{ten[:3]}.{ten[3:6]}.{ten[6:]}"
    return ten


def _nanp(rng: random.Random) -> str:
    exchange = rng.randrange(200, 1000)
    if exchange % 100 == 11:  # N11 codes (411, 911) are not exchanges
        exchange += 1
    return f"{rng.choice(AREA_CODES)}{exchange}{rng.randrange(10_000):04d}"


_DIGITS_ONLY = str.maketrans("", "", "+()-. ")


def write_csv(
    path: Path, rows: int, *, national: bool, seed: int, timezone_share: float = 0.0
) -> Generated:
    rng = random.Random(seed)
    zones = random.Random(seed + 2)  # its own stream: the other columns stay the same
    number = national_number if national else e164_number
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        last = "timezone" if timezone_share else "notes"
        out.writerow(["phone_number", "first_name", "last_name", "email", "company", "city", last])
        seen: set[str] = set()  # the server rejects repeated numbers unless dedupe=true
        for _ in range(rows):
            phone = number(rng)
            while phone.translate(_DIGITS_ONLY) in seen:
                phone = number(rng)
            seen.add(phone.translate(_DIGITS_ONLY))
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first[0]}{last}{rng.randrange(100)}@{rng.choice(DOMAINS)}".lower()
            row = [
                phone,
                first,
                last,
                email,
                rng.choice(COMPANIES),
                rng.choice(CITIES),
                rng.choice(NOTES),
            ]
            if timezone_share:
                row[-1] = zones.choice(ZONES) if zones.random() < timezone_share else ""
            out.writerow(row)
    return Generated(path=path, rows=rows, size=path.stat().st_size)


def check_sample(path: Path, *, region: str | None, n: int = 2000) -> None:
    """Every number of the first `n` rows must be valid for phonenumbers itself."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        bad = []
        for i, row in enumerate(reader):
            if i >= n:
                break
            parsed = phonenumbers.parse(row["phone_number"], region)
            if not phonenumbers.is_valid_number(parsed):
                bad.append(row["phone_number"])
    if bad:
        raise SystemExit(f"generated numbers that phonenumbers rejects: {bad[:10]}")


@dataclass(frozen=True)
class RunResult:
    label: str
    rows: int
    size: int
    seconds: float
    peak_rss: int
    server_cpu_s: float
    total_calls: int | None
    status: int

    @property
    def ok(self) -> bool:
        return self.status < 300 and self.total_calls == self.rows

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def post_csv(
    server: Server,
    data: Generated,
    *,
    label: str,
    default_country: str | None,
    scheduled_at: str | None,
) -> RunResult:
    fields = {"agentId": AGENT}
    if scheduled_at:
        fields["scheduledAt"] = scheduled_at
    if default_country:
        fields["defaultCountry"] = default_country
    cpu0 = server.cpu_seconds()
    server.start_window()
    with (
        httpx.Client(base_url=server.base_url, timeout=POST_TIMEOUT_S) as client,
        data.path.open("rb") as f,
    ):
        started = time.perf_counter()
        response = client.post(
            "/v1/api/batch-calls",
            headers=server.headers,
            data=fields,
            files={"file": (data.path.name, f, "text/csv")},
        )
        seconds = time.perf_counter() - started
        peak = server.window_peak()
        cpu = server.cpu_seconds() - cpu0
        total = None
        try:
            body = response.json()
            total = body.get("totalCalls")
        except ValueError:
            body = response.text[:500]
        if total is not None:
            # The batch the server reports afterwards has every row (as a waiting call, while
            # it is scheduled ahead).
            url = f"/v1/api/batch-calls/{body['batchId']}/status"
            progress = client.get(url, headers=server.headers).json()
            waiting = progress.get("waiting") if scheduled_at else total
            if (progress.get("total"), waiting) != (total, total):
                print(f"  ! {label}: progress after upload: {progress}", file=sys.stderr)
                total = None
    if response.status_code >= 300 or total != data.rows:
        print(f"  ! {label}: HTTP {response.status_code}: {str(body)[:500]}", file=sys.stderr)
    return RunResult(label, data.rows, data.size, seconds, peak, cpu, total, response.status_code)


def post_validate(server: Server, data: Generated, *, label: str) -> RunResult:
    """POST the file to the validate endpoint: every row validated, every zone inferred."""
    cpu0 = server.cpu_seconds()
    server.start_window()
    with (
        httpx.Client(base_url=server.base_url, timeout=POST_TIMEOUT_S) as client,
        data.path.open("rb") as f,
    ):
        started = time.perf_counter()
        response = client.post(
            "/v1/api/batch-calls/validate",
            headers=server.headers,
            data={"agentId": AGENT},
            files={"file": (data.path.name, f, "text/csv")},
        )
        seconds = time.perf_counter() - started
    peak, cpu = server.window_peak(), server.cpu_seconds() - cpu0
    body = response.json() if response.status_code < 500 else {}
    valid = body.get("validRows")
    zones = body.get("timeZones") or []
    if response.status_code >= 300 or valid != data.rows:
        print(f"  ! {label}: HTTP {response.status_code}: {str(body)[:500]}", file=sys.stderr)
    else:
        print(
            f"  {label}: {len(zones)} zone sets, "
            f"{sum(z['calls'] for z in zones):,} rows placed, "
            f"{body.get('unknownTimeZone')} without a known zone"
        )
    return RunResult(label, data.rows, data.size, seconds, peak, cpu, valid, response.status_code)


def import_suppressions(server: Server, upload: Generated, n: int, tmp: Path, seed: int) -> None:
    """A suppression list of `n` valid numbers that the upload does not contain."""
    with upload.path.open(encoding="utf-8", newline="") as f:
        taken = {row["phone_number"] for row in csv.DictReader(f)}
    rng = random.Random(seed + 1)
    path = tmp / "suppressed.csv"
    made: set[str] = set()
    while len(made) < n:
        phone = "+1" + _nanp(rng)
        if phone not in taken:
            made.add(phone)
    path.write_text("phone_number\n" + "\n".join(sorted(made)) + "\n", encoding="utf-8")
    started = time.perf_counter()
    with (
        httpx.Client(base_url=server.base_url, timeout=POST_TIMEOUT_S) as client,
        path.open("rb") as f,
    ):
        r = client.post(
            "/v1/api/suppressions",
            headers=server.headers,
            files={"file": ("suppressed.csv", f, "text/csv")},
        )
    took = time.perf_counter() - started
    if r.status_code != 201 or r.json().get("added") != n:
        raise SystemExit(f"suppression import failed: HTTP {r.status_code} {r.text[:300]}")
    print(f"suppression list: {n:,} numbers imported in {took:.2f} s")


def print_header() -> None:
    print(
        f"{'run':<22} {'rows':>8} {'MB':>6} {'seconds':>8} {'rows/s':>9} "
        f"{'peak RSS MB':>11} {'srv CPU s':>9}  totalCalls"
    )


def print_result(r: RunResult) -> None:
    check = "ok" if r.ok else f"MISMATCH ({r.total_calls}, HTTP {r.status})"
    print(
        f"{r.label:<22} {r.rows:>8} {r.size / 1e6:>6.2f} {r.seconds:>8.2f} {r.rows_per_s:>9,.0f} "
        f"{r.peak_rss / MB:>11.1f} {r.server_cpu_s:>9.2f}  {check}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=300_000, help="rows per CSV (default 300000)")
    p.add_argument("--runs", type=int, default=3, help="E.164 uploads (default 3)")
    p.add_argument("--national-runs", type=int, default=1, help="defaultCountry=US uploads")
    p.add_argument("--database-url", help="e.g. postgresql://127.0.0.1:5432/test (default SQLite)")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--start-now", action="store_true", help="let the dispatcher start batches")
    p.add_argument("--cps", type=float, default=0.01, help="workspace calls/s (default 0.01)")
    p.add_argument("--no-dispatch", action="store_true", help="serve --no-dispatch")
    p.add_argument(
        "--profile",
        metavar="OUT",
        help="run the server under py-spy: OUT.svg flamegraph, OUT.txt collapsed, else speedscope",
    )
    p.add_argument(
        "--suppressed",
        type=int,
        default=0,
        metavar="N",
        help="first import N numbers (none of the upload's) into the suppression list, so "
        "every row is checked against it (issue 10)",
    )
    p.add_argument(
        "--timezone-column",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="add a timezone column, filled on this share of the rows (0 to 1; issue 10)",
    )
    p.add_argument(
        "--validate-runs",
        type=int,
        default=0,
        metavar="N",
        help="also POST the file N times to /validate (every row's zones inferred)",
    )
    add_wait_quiet(p)
    args = p.parse_args(argv)
    if args.wait_quiet:
        wait_until_quiet(args.wait_quiet)

    print_machine()
    scheduled = None
    if not args.start_now:
        scheduled = (datetime.now(UTC) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    wrap = None
    if args.profile:
        spy = Path(sys.executable).parent / "py-spy"
        fmt = {".svg": "flamegraph", ".txt": "raw"}.get(Path(args.profile).suffix, "speedscope")
        wrap = [str(spy), "record", "--threads", "-r", "200", "-o", args.profile]
        wrap += ["--format", fmt, "--"]

    with tempfile.TemporaryDirectory(prefix="dialbatch-ingest-") as tmp:
        t0 = time.perf_counter()
        e164 = write_csv(
            Path(tmp) / "contacts.csv",
            args.rows,
            national=False,
            seed=args.seed,
            timezone_share=args.timezone_column,
        )
        check_sample(e164.path, region=None)
        national = None
        if args.national_runs:
            national = write_csv(
                Path(tmp) / "contacts-national.csv", args.rows, national=True, seed=args.seed
            )
            check_sample(national.path, region="US")
        print(
            f"generated {e164.rows} rows, {e164.size / 1e6:.2f} MB "
            f"({e164.size / e164.rows:.1f} B/row) in {time.perf_counter() - t0:.1f}s; "
            f"database: {args.database_url or 'SQLite (embedded default)'}"
        )
        results: list[RunResult] = []
        with run_server(
            database_url=args.database_url,
            dispatch=not args.no_dispatch,
            calls_per_second=args.cps,
            wrap=wrap,
        ) as server:
            if args.suppressed:
                import_suppressions(server, e164, args.suppressed, Path(tmp), args.seed)
            idle = server.monitor.current()
            print(f"server pid {server.pid}, idle RSS {idle / MB:.1f} MB")
            print_header()
            for i in range(args.runs):
                r = post_csv(
                    server,
                    e164,
                    label=f"e164 #{i + 1}",
                    default_country=None,
                    scheduled_at=scheduled,
                )
                print_result(r)
                results.append(r)
            for i in range(args.validate_runs):
                r = post_validate(server, e164, label=f"validate #{i + 1}")
                print_result(r)
                results.append(r)
            for i in range(args.national_runs if national else 0):
                assert national is not None
                r = post_csv(
                    server,
                    national,
                    label=f"national US #{i + 1}",
                    default_country="US",
                    scheduled_at=scheduled,
                )
                print_result(r)
                results.append(r)
        print(
            f"server peak RSS over its whole life (VmHWM at exit; reset before each run): "
            f"{(server.final_hwm or 0) / MB:.1f} MB; "
            f"sampled peak over its life: {server.monitor.peak / MB:.1f} MB"
        )
    print_load("at end")
    return summarize(results)


def summarize(results: list[RunResult]) -> int:
    e164 = [r for r in results if r.label.startswith("e164")]
    if not e164:
        return 1
    secs = statistics.median(r.seconds for r in e164)
    rss = statistics.median(r.peak_rss for r in e164) / MB
    worst = max(r.peak_rss for r in results) / MB
    rate = statistics.median(r.rows_per_s for r in e164)
    print(
        f"median of {len(e164)} E.164 runs: {secs:.2f} s, {rate:,.0f} rows/s, "
        f"peak RSS {rss:.1f} MB (worst run {worst:.1f} MB)"
    )
    all_ok = all(r.ok for r in results)
    if min(r.size for r in e164) < 19e6:
        print("targets not judged: they are for a ~20 MB (300k-row) file")
        return 0 if all_ok else 1
    time_ok = secs <= TARGET_SECONDS
    rss_ok = worst <= TARGET_RSS_MB
    print(
        f"target: accepted in <= {TARGET_SECONDS:g} s: {'MET' if time_ok else 'NOT MET'}; "
        f"peak RSS <= {TARGET_RSS_MB:g} MB: {'MET' if rss_ok else 'NOT MET'}; "
        f"totalCalls right: {'yes' if all_ok else 'NO'}"
    )
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
