"""Getting photos out of a request: multipart field `image` (one or many) or a raw body.

Uploads are kept in memory only (see `InMemoryRequest`); the client's file
name is used for display and never for anything on disk.
"""

from __future__ import annotations

import io
import os
import unicodedata
from dataclasses import dataclass

from flask import Request, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from webapp.errors import RequestError
from webapp.form_parser import WholeBodyFormParser, read_body

FIELD = "image"
RAW_TYPES = ("application/octet-stream",)


@dataclass(frozen=True)
class Upload:
    filename: str  # for display only
    data: bytes


class InMemoryRequest(Request):
    """Werkzeug spools large uploads to temporary files; we parse forms in memory
    (`webapp.form_parser`: they are bounded by MAX_CONTENT_LENGTH), so nothing a user
    sends reaches the disk. A chunked body, which has no Content-Length to refuse up
    front, is held to the same limit while it is read: one byte over it is a 413. A body
    that ends before the length its client announced is a 400, not half a photo."""

    form_data_parser_class = WholeBodyFormParser

    @cached_property
    def stream(self):
        limit, length = self.max_content_length, self.content_length
        # gunicorn marks the bodies it delimits itself as terminated (PEP 3333's
        # extension), and Werkzeug then reads them to their end unchecked.
        if self.environ.get("wsgi.input_terminated"):
            if length is None and limit is not None:  # chunked
                return _CappedBody(self.environ["wsgi.input"], limit)
            if length is not None and (limit is None or length <= limit):
                # The server ends the stream at `length`; `read_body` reads it in one
                # call (Werkzeug's LimitedStream copied it into a fresh zeroed buffer
                # first: a quarter of a 2.7 MB form's time) and finds a body cut short.
                return self.environ["wsgi.input"]
        return super().stream

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        # Where Werkzeug's parser (the fallback of webapp.form_parser) puts an uploaded
        # file: in memory, never the temporary file it uses for parts over 500 KB.
        return io.BytesIO()


class _CappedBody(LimitedStream):
    """A body of unknown length read up to `limit` bytes. Werkzeug's own cap ends the
    stream quietly at the limit, so a 21 MB chunked upload would be cut to 20 MB and
    parsed as a damaged photo; reading one byte past the limit is the tell."""

    def __init__(self, stream, limit: int):
        super().__init__(stream, limit + 1, is_max=True)

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        if self.is_exhausted:
            raise RequestEntityTooLarge()
        return count


def uploads_from_request() -> list[Upload]:
    """The photos in the current request, or a `RequestError` saying what is wrong."""
    limit = current_app.config["MAX_FILES_PER_REQUEST"]
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        files = [f for f in request.files.getlist(FIELD) if f.filename or f.content_length]
        if not files:
            others = sorted(set(request.files) - {FIELD})
            hint = f" (the request had file fields: {', '.join(others)})" if others else ""
            raise RequestError(400, "missing_image",
                               f"No photo received: send it in the form field '{FIELD}'{hint}.")
        if len(files) > limit:
            raise RequestError(400, "too_many_files",
                               f"{len(files)} photos sent; at most {limit} are accepted at once.")
        return [Upload(display_name(f.filename), f.read()) for f in files]
    if mimetype.startswith("image/") or mimetype in RAW_TYPES:
        return [Upload("upload", _raw_body())]
    raise RequestError(415, "unsupported_media_type",
                       "Send the photo as multipart/form-data in the field "
                       f"'{FIELD}', or as the raw request body with an image/* content type.")


def _raw_body() -> bytes:
    """The request body. Of a known length it is read in one call: Werkzeug's get_data
    reads 64 KB at a time into a growing buffer, 3 ms of a 2.7 MB photo's request on a
    2-core AMD EPYC (bench/results/body.md)."""
    if request.content_length is None:
        return request.get_data(cache=False)
    return read_body(request.stream, request.content_length)


def display_name(filename: str | None, limit: int = 100) -> str:
    """A client's file name made safe to show: no directories, no control characters."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > limit:
        stem, ext = os.path.splitext(name)
        name = stem[:limit - len(ext[:10]) - 1] + "…" + ext[:10]
    return name or "upload"
