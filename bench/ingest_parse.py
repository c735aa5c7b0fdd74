"""Ingest parsing figures: phone validation (phonenumbers vs the fast path) and CSV passes.

    python bench/ingest_parse.py [--rows 300000]

1. Numbers/s of ``phonenumbers.parse`` + ``is_valid_number`` + E.164 formatting against
   :class:`PhoneNormalizer` on realistic mixed numbers (mostly +1 and +44 E.164, some national
   with a default region), and the speedup.
2. ``scan`` and ``iter_calls`` over a ~20 MB CSV of the same numbers with name, email, company and
   notes columns, run in a fresh process so that its peak RSS is the ingest's own.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import phonenumbers

from dialbatch.domain.phone import PhoneNormalizer
from dialbatch.ingest import IngestOptions, iter_calls, scan

SEED = 7
US_AREAS = ("212", "213", "312", "415", "512", "617", "646", "702", "305", "206", "404", "718")
FIRST = ("Ana", "Ben", "Chloé", "Dev", "Eve", "Farid", "Grace", "Hiro", "Ines", "Jon")
LAST = ("Smith", "García", "Nguyen", "Okafor", "Rossi", "Müller", "Kim", "Singh", "Brown")
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")


def reference(raw: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def numbers(count: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """Unique, nearly all valid: 55% +1 and 30% +44 E.164, 15% national (US, GB)."""
    us_prefixes = [
        a + e
        for a in US_AREAS
        for e in map(str, range(200, 1000))
        if reference(f"+1{a}{e}0100", None)
    ]
    gb_prefixes = [p for p in map(str, range(7400, 7990)) if reference(f"+44{p}123456", None)]
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    while len(out) < count:
        kind = rng.random()
        if kind < 0.65:
            digits = rng.choice(us_prefixes) + f"{rng.randrange(10_000):04d}"
            if digits in seen:
                continue
            raw, region = (
                (f"+1{digits}", None)
                if kind < 0.55
                else (f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "US")
            )
        else:
            digits = rng.choice(gb_prefixes) + f"{rng.randrange(1_000_000):06d}"
            if digits in seen:
                continue
            raw, region = (
                (f"+44{digits}", None) if kind < 0.95 else (f"0{digits[:4]} {digits[4:]}", "GB")
            )
        seen.add(digits)
        out.append((raw, region))
    return out


def bench_phones(sample: list[tuple[str, str | None]]) -> list[str | None]:
    """Print the figures; return the reference results."""
    normalizers = {region: PhoneNormalizer(region) for region in (None, "US", "GB")}
    started = time.perf_counter()
    expected = [reference(raw, region) for raw, region in sample]
    ref_rate = len(sample) / (time.perf_counter() - started)
    started = time.perf_counter()
    got: list[str | None] = []
    for raw, region in sample:
        try:
            got.append(normalizers[region].normalize(raw))
        except ValueError:
            got.append(None)
    fast_rate = len(sample) / (time.perf_counter() - started)
    assert got == expected, "fast path differs from phonenumbers"
    valid = sum(e is not None for e in expected) / len(sample)
    print(f"phone validation, {len(sample):,} numbers ({valid:.1%} valid):")
    print(f"  phonenumbers (reference): {ref_rate:>10,.0f} numbers/s")
    print(f"  PhoneNormalizer (fast):   {fast_rate:>10,.0f} numbers/s")
    print(f"  speedup:                  {fast_rate / ref_rate:>10.1f}x")
    return expected


def write_csv(path: Path, sample: list[tuple[str, str | None]], rng: random.Random) -> None:
    """National numbers are written in US form, read with default region US."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone_number,first_name,last_name,email,company,notes\r\n")
        for i, (raw, region) in enumerate(sample):
            if region == "GB":  # one default region per file: write these internationally
                raw = "+44" + raw[1:].replace(" ", "")
            first, last = rng.choice(FIRST), rng.choice(LAST)
            notes = "mornings" if i % 3 else '"call back, ""Q3"""'
            out.write(
                f"{raw},{first},{last},{first.lower()}{i}@ex.com,{rng.choice(COMPANIES)},{notes}\r\n"
            )


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux's VmHWM, because ru_maxrss survives exec: it would
    include the parent's RSS at the moment it started us."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_ingest(path: Path) -> None:
    """Run in a child process: the figures of scan + iter_calls and the peak RSS.

    Wall time and CPU time are both shown: on a busy machine the CPU time is the cost on one
    core, the wall time also has the waiting for it.
    """
    options = IngestOptions(default_region="US")
    clock = Clock()
    with path.open("rb") as f:
        result = scan(f, options)
        scanned = clock.lap()
        rows = sum(len(chunk) for chunk in iter_calls(f, result))
        iterated = clock.lap()
    assert rows == result.accepted
    total = (scanned[0] + iterated[0], scanned[1] + iterated[1])
    print(f"CSV ingest, {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB (wall s, CPU s):")
    for name, (wall, cpu) in (("pass 1 scan", scanned), ("pass 2 iter_calls", iterated)):
        print(f"  {name + ':':19s}{wall:6.2f} s {cpu:6.2f} s  ({rows / wall:>9,.0f} rows/s)")
    wall, cpu = total
    print(f"  {'total:':19s}{wall:6.2f} s {cpu:6.2f} s  ({rows / wall:>9,.0f} rows/s)")
    print(f"  peak RSS of the ingest process: {peak_rss_mb():.0f} MB")


class Clock:
    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        """Wall and CPU seconds since the last lap."""
        wall, cpu = time.perf_counter(), time.process_time()
        lap = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return lap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--ingest-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep-csv", type=Path, help="also write the CSV here")
    args = parser.parse_args()
    if args.ingest_only:
        bench_ingest(args.ingest_only)
        return
    rng = random.Random(SEED)
    sample = numbers(args.rows, rng)
    expected = bench_phones(sample)
    valid = [number for number, e164 in zip(sample, expected, strict=True) if e164 is not None]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.csv"
        write_csv(path, valid, rng)
        if args.keep_csv:
            args.keep_csv.write_bytes(path.read_bytes())
        subprocess.run([sys.executable, __file__, "--ingest-only", str(path)], check=True)


if __name__ == "__main__":
    main()
