"""A kept file as an HTTP response: what its bytes were found to be, never rendered by a browser."""

from __future__ import annotations

from flask import Response

from parley.core.files import FileBody


def file_response(file: FileBody) -> Response:
    # Its type is the one its bytes showed (``FileRules.checked``); nosniff keeps a browser to it,
    # and the sandbox keeps anything it renders from running as our origin.
    response = Response(file.data, mimetype=file.content_type)
    response.headers["Content-Disposition"] = _disposition(file)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def _disposition(file: FileBody) -> str:
    inline = file.content_type.startswith("image/")
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in file.name)[:100]
    return f'{"inline" if inline else "attachment"}; filename="{safe or "file"}"'
