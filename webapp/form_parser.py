"""Multipart forms parsed from the whole body at once, in memory (python-multipart).

Werkzeug's form parser reads a body 64 KB at a time through gunicorn, which copies what
it has received ahead on every read, and it moves every piece through a few Python
buffers: a Flask view that only reads a 2.7 MB phone photo from a form spent 7-9 ms on
it, against 2.5-2.8 ms for the body read in one call and split by python-multipart
(its boundary search is `bytes.find`), and 0.9 against 0.4 ms for a 512-px photo
(2-core AMD EPYC, bench/results/capacity.md). Uploads are bounded by MAX_CONTENT_LENGTH
and kept in memory anyway, so the body is read whole and the parts are slices of it.

The limits stay Werkzeug's: MAX_FORM_PARTS parts (413, which webapp.errors words as
too many photos), non-file fields up to MAX_FORM_MEMORY_SIZE (413), a few headers of a
few of at most `MAX_HEADER_BYTES` a part. RFC 2046 allows text before the first
boundary line (a preamble), which is skipped here, since python-multipart does not; a
body it still refuses goes to Werkzeug's own parser, which decides as it always did: it
reads a part of headers only (Werkzeug's test client sends an empty file so, also
allowed by the RFC), and a body that is no complete multipart form parses as an empty
one. Werkzeug's scan of a preamble costs 30-55 ns a byte, but the body it gets begins
at a boundary line. Nothing is written to disk (the request's `_get_file_stream`,
webapp.uploads).
"""

from __future__ import annotations

import io
import logging
import re

from python_multipart.multipart import MultipartParseError, MultipartParser
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from webapp.errors import RequestError

#: The most bytes of a URL-encoded form (the login, feedback and review forms, not
#: uploads): the largest, the no-JavaScript feedback form, carries a 480 px JPEG preview,
#: at most about 240 KB encoded. Werkzeug decodes such a body whole, with no limit of
#: its own: 20 MB of `%41` held 1.6 GB and 2.2 s, 20 MB of empty fields 1 GB and 5 s.
MAX_URLENCODED_BYTES = 512 * 1024
#: Lines that begin like a boundary line (CR LF, "--" and the boundary's first
#: character) a multipart body may hold, per part allowed: python-multipart handles
#: each partial match slowly, so a 20 MB body of them cost 5 s (a 1-character
#: boundary) where a real 20 MB form takes 0.02 s. A real form has one per part, and a
#: photo's bytes match by chance about once in 10^14 positions.
NEAR_BOUNDARIES_PER_PART = 4
#: Bytes of one part header: python-multipart's default (4,224) refused a file name of
#: 5,000 characters, which Werkzeug took; headers are split with `bytes.find` at about
#: 150 MB/s, so even a whole body of them costs a fraction of a second.
MAX_HEADER_BYTES = 64 * 1024

# python-multipart logs a warning for each malformed form it refuses: a client's broken
# upload is its own 400, not a line it may write into our log at will.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


class WholeBodyFormParser(FormDataParser):
    """Werkzeug's `FormDataParser` with its multipart step replaced and its URL-encoded
    step bounded; what `request.form` and `request.files` give is unchanged."""

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        """Werkzeug's, for a body of at most MAX_URLENCODED_BYTES and MAX_FORM_PARTS
        fields (a 413 otherwise, before any decoding)."""
        announced_too_long = content_length is not None and content_length > MAX_URLENCODED_BYTES
        body = b"" if announced_too_long else stream.read(MAX_URLENCODED_BYTES + 1)
        if announced_too_long or len(body) > MAX_URLENCODED_BYTES or (
                self.max_form_parts is not None and body.count(b"&") >= self.max_form_parts):
            raise RequestError(413, "form_too_large", (
                f"This form is larger than the site's forms are: at most "
                f"{MAX_URLENCODED_BYTES // 1024} KB and {self.max_form_parts} fields when "
                "URL-encoded. Photos go in a multipart/form-data upload."))
        return super()._parse_urlencoded(io.BytesIO(body), mimetype, len(body), options)

    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "")
        if not boundary:
            raise ValueError("Missing boundary")
        body = stream.read() if content_length is None else read_body(stream, content_length)
        if self.max_form_parts is not None and body.count(
                b"\r\n--" + boundary.encode("latin-1")[:1]) > NEAR_BOUNDARIES_PER_PART * self.max_form_parts:
            raise RequestError(400, "bad_request", "This multipart body holds thousands of lines "
                               "that begin like its boundary: no browser or HTTP library sends that. "
                               "Send the form again with a boundary that does not occur in its parts.")
        body = without_preamble(body, boundary)
        try:
            parts = split_parts(body, boundary, self.max_form_parts)
        except ValueError:  # a part of headers only, or no multipart form at all
            return super()._parse_multipart(io.BytesIO(body), mimetype, len(body), options)
        fields, files = [], []
        for headers, data in parts:
            _, disposition = parse_options_header(headers.get("Content-Disposition", ""))
            name = disposition.get("name", "")
            if "filename" in disposition:
                files.append((name, FileStorage(io.BytesIO(data), disposition["filename"], name,
                                                headers=headers)))
                continue
            if self.max_form_memory_size is not None and len(data) > self.max_form_memory_size:
                raise RequestEntityTooLarge()
            fields.append((name, data.decode(_charset(headers), "replace")))
        return stream, self.cls(fields), self.cls(files)


def split_parts(body: bytes, boundary: str, max_parts: int | None) -> list[tuple[Headers, bytes]]:
    """Each part of a multipart `body`: its headers and its bytes. More than `max_parts`
    parts is a 413; a body that is not a complete multipart message a ValueError."""
    parts: list[tuple[Headers, bytes]] = []
    headers: list[tuple[str, str]] = []
    field, value, data = bytearray(), bytearray(), []
    finished = False

    def part_begin():
        if max_parts is not None and len(parts) >= max_parts:
            raise RequestEntityTooLarge()
        headers.clear()
        data.clear()

    def header_end():
        headers.append((field.decode("latin-1").strip(), value.decode("latin-1").strip()))
        field.clear()
        value.clear()

    def end():
        nonlocal finished
        finished = True

    callbacks = {
        "on_part_begin": part_begin,
        "on_header_field": lambda chunk, start, stop: field.extend(chunk[start:stop]),
        "on_header_value": lambda chunk, start, stop: value.extend(chunk[start:stop]),
        "on_header_end": header_end,
        "on_part_data": lambda chunk, start, stop: data.append(chunk[start:stop]),
        "on_part_end": lambda: parts.append((Headers(headers), b"".join(data))),
        "on_end": end,
    }
    parser = MultipartParser(boundary, callbacks, max_header_size=MAX_HEADER_BYTES)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise ValueError(f"malformed multipart body: {exc}") from None
    if not finished:
        raise ValueError("the multipart body ends before its closing boundary")
    return parts


def without_preamble(body: bytes, boundary: str) -> bytes:
    """`body` from its first boundary line on (a ValueError if it has none). The line is
    the boundary and its CR LF (or the closing `--`), as RFC 2046 has it: a preamble
    line that only begins like one is preamble. Searched from a literal CR LF, so the
    regular expression engine skips to candidates at C speed (20-40 ms for 19 MB built
    of near misses; 0.2-0.4 s with the start of the body as an alternative)."""
    line = b"--" + re.escape(boundary.encode("latin-1")) + rb"(?:--|[ \t]*\r\n)"
    if re.match(line, body):
        return body
    first = re.compile(b"\r\n" + line).search(body)
    if first is None:
        raise ValueError("no boundary line in the multipart body")
    return body[first.start() + 2:]


def _charset(headers: Headers) -> str:
    """A text field's charset: the few a client may name (as Werkzeug allows), else UTF-8."""
    _, parameters = parse_options_header(headers.get("Content-Type", ""))
    charset = parameters.get("charset", "").lower()
    return charset if charset in {"ascii", "us-ascii", "utf-8", "iso-8859-1"} else "utf-8"


def read_body(stream, length: int) -> bytes:
    """`length` bytes of a request's `stream` in as few reads as the server allows
    (Werkzeug's stream holds the body to the size limit: 413). A body that ends before
    the length its client announced is a 400, not half a photo."""
    parts = []
    while length > 0 and (part := stream.read(length)):
        parts.append(part)
        length -= len(part)
    if length > 0:
        raise ClientDisconnected()
    return b"".join(parts)
