"""Undoing a response's Content-Encoding without ever inflating past the size cap."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from convert.errors import ConvertError

ACCEPT_ENCODING = "gzip, deflate"
"""The only content codings asked for, and so the only ones decoded (by `Inflater`)."""


class Inflater:
    """Undoes a gzip or deflate Content-Encoding, never producing more than it is asked for.

    httpx inflates each network read in full, so 64 KB of a gzip bomb becomes 64 MB in
    memory before any cap is checked, and a stacked coding (`gzip, gzip`) becomes
    gigabytes. Here each call yields at most `room + 1` bytes, so the size cap stops
    a bomb after at most one chunk past the cap.
    """

    def __init__(self, coding: str, url: str) -> None:
        self._coding = coding
        self._url = url
        self._started = False
        # gzip: a gzip header only; deflate: a zlib stream, or (as some servers send)
        # a raw deflate stream, tried when the first bytes are not a zlib header.
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else 15)

    @classmethod
    def for_coding(cls, header: str, url: str) -> Inflater | None:
        """The inflater for a Content-Encoding header, None for none; unknown codings fail."""
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return None
        if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
            return cls("deflate" if codings[0] == "deflate" else "gzip", url)
        # Only gzip and deflate are asked for; a stacked coding is a bomb's trick.
        raise ConvertError(url, f"unsupported Content-Encoding {header.strip()[:60]!r}")

    def inflate(self, data: bytes, room: int) -> Iterator[bytes]:
        """The decoded bytes of `data`, in pieces; stops once more than `room` came out."""
        produced = 0
        pending = data
        while pending and produced <= room:
            try:
                piece = self._inflate.decompress(pending, room - produced + 1)
            except zlib.error as error:
                if self._coding == "deflate" and not self._started:
                    self._started = True
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue  # the same bytes, as raw deflate
                raise ConvertError(self._url, f"bad {self._coding} data: {error}") from None
            self._started = True
            pending = self._inflate.unconsumed_tail
            produced += len(piece)
            yield piece
            if self._inflate.eof:
                return  # anything after the end of the stream is ignored, as httpx does

    def finish(self) -> bytes:
        """What the inflater still holds once every byte has been received."""
        try:
            return self._inflate.flush()
        except zlib.error as error:
            raise ConvertError(self._url, f"bad {self._coding} data: {error}") from None
