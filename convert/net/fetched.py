"""What a successful download returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful download."""

    url: str
    """The final address, after redirects."""

    content: bytes
    """The response body, at most `max_bytes` long."""

    content_type: str
    """The Content-Type header, lower-case, without parameters."""

    etag: str = ""
    """The ETag validator, when the server sent one."""

    last_modified: str = ""
    """The Last-Modified validator, when the server sent one."""

    not_modified: bool = False
    """The server answered 304 to a conditional request (no content)."""

    from_cache: bool = False
    """The content is the cached copy, confirmed unchanged by the server."""
