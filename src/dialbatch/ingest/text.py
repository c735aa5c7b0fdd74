"""The bytes of an upload as lines of text, read incrementally; anything else is refused.

Uploads are UTF-8 (with or without the BOM that Excel's "CSV UTF-8" writes) or, when a BOM says
so, UTF-16 (Excel's "Unicode text"). We never guess a legacy code page: a Windows-1252 or Latin-1
file would decode to wrong names without any error, so undecodable bytes reject the file with the
row they are near and a hint to re-save it. NUL characters are refused too: they mean a binary
file (or UTF-16 without a BOM) and PostgreSQL cannot store them in text.
"""

from __future__ import annotations

import codecs
import io
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from dialbatch.ingest.problems import CsvRejected

# Appended after the last line: NUL never reaches the parser otherwise, so this marks the end of
# input unambiguously. A quote left open at the end of the file swallows it into the last value.
END_OF_INPUT = "\x00\n"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", 0),  # the codec drops the BOM itself
    (codecs.BOM_UTF16_LE, "utf-16-le", len(codecs.BOM_UTF16_LE)),
    (codecs.BOM_UTF16_BE, "utf-16-be", len(codecs.BOM_UTF16_BE)),
)
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip) and legacy .xls
_RESAVE_HINT = 'save it from the spreadsheet as "CSV UTF-8"'
_CHUNK = 1 << 16


class NotText(Exception):
    """Raised from inside line iteration when a NUL character turns up."""


def detect_encoding(f: BinaryIO) -> tuple[str, int]:
    """The codec for ``f`` and how many BOM bytes to skip before handing it the bytes."""
    f.seek(0)
    head = f.read(4)
    if head.startswith(_WORKBOOK_MAGIC):
        raise CsvRejected(
            f"file is not a UTF-8 CSV text file: it looks like an Excel workbook; {_RESAVE_HINT}"
        )
    for bom, encoding, skip in _BOMS:
        if head.startswith(bom):
            return encoding, skip
    return "utf-8", 0


@contextmanager
def text_lines(f: BinaryIO, *, check: bool = True) -> Iterator[tuple[str, Iterator[str]]]:
    """Yield the encoding and an iterator of lines (ends kept), then :data:`END_OF_INPUT`.

    ``check=False`` skips the search for NUL, for a file already read once with the check.
    The caller's file stays open: the text wrapper is detached on the way out.
    """
    encoding, skip = detect_encoding(f)
    f.seek(skip)
    wrapper = io.TextIOWrapper(f, encoding=encoding, errors="strict", newline="")
    try:
        yield encoding, _checked(wrapper) if check else itertools.chain(wrapper, [END_OF_INPUT])
    finally:
        wrapper.detach()


def _checked(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if "\x00" in line:
            raise NotText
        yield line
    yield END_OF_INPUT


def not_text(f: BinaryIO, error: Exception, row: int) -> CsvRejected:
    """The rejection for a decoding error or a NUL met while reading record ``row``."""
    encoding, skip = detect_encoding(f)
    kind = "UTF-8" if encoding.startswith("utf-8") else "UTF-16"
    if isinstance(error, NotText):
        what = f"it contains NUL characters (row {row})"
    else:
        what = f"it has bytes that are not {kind} text near row {_bad_line(f, encoding, skip)}"
    return CsvRejected(f"file is not a {kind} CSV text file: {what}; {_RESAVE_HINT}")


def _bad_line(f: BinaryIO, encoding: str, skip: int) -> int:
    """The line number of the first undecodable byte (1-based), found by decoding again."""
    f.seek(skip)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    while True:
        chunk = f.read(_CHUNK)
        try:
            line += decoder.decode(chunk, final=not chunk).count("\n")
        except UnicodeDecodeError as exc:
            good = exc.object[: exc.start]
            return line + codecs.decode(good, encoding, errors="replace").count("\n")
        if not chunk:
            return line
