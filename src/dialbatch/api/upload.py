"""Reading a multipart upload without ever holding it in memory.

The body stream is counted as it arrives and the request is refused with 413 the moment
it crosses the limit; the file part spools to a temporary file (Starlette keeps at most
1 MB of it in memory).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import BinaryIO

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from dialbatch.api.errors import BadRequest, PayloadTooLarge

# Form fields are small; this is room for them and the multipart framing.
FORM_OVERHEAD_BYTES = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Upload:
    fields: dict[str, str]
    file: BinaryIO | None
    filename: str | None
    file_size: int
    _form: FormData | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        if self._form is not None:
            await self._form.close()


async def read_upload(request: Request, max_file_bytes: int) -> Upload:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest(
            "Send the CSV as multipart/form-data with a `file` field and an `agentId` field"
        )
    limit = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(max_file_bytes)
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), limit, max_file_bytes),
        max_files=1,
        max_fields=32,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"Malformed multipart body: {exc.message}") from exc
    upload = Upload(fields={}, file=None, filename=None, file_size=0, _form=form)
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "file":
                    raise BadRequest(f"Unexpected file field {key!r}; send the CSV as `file`")
                upload.file = value.file
                upload.filename = value.filename
                upload.file_size = value.size or 0
            else:
                upload.fields[key] = value
        if upload.file_size > max_file_bytes:
            raise _too_large(max_file_bytes)
    except BaseException:
        await upload.aclose()
        raise
    return upload


def _too_large(max_file_bytes: int) -> PayloadTooLarge:
    mb = max_file_bytes / (1024 * 1024)
    return PayloadTooLarge(f"The file is larger than the {mb:g} MB limit")


async def _capped(
    stream: AsyncIterator[bytes], limit: int, max_file_bytes: int
) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise _too_large(max_file_bytes)
        yield chunk
