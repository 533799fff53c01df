"""Writers: read the model, never change it. One table names the feed formats."""

from __future__ import annotations

from collections.abc import Callable

from convert.errors import ConvertError
from convert.model import Feed
from convert.writers.jsonfeed import write_json_feed
from convert.writers.rss import write_atom, write_rss

FeedWriter = Callable[[Feed], bytes]

FEED_WRITERS: dict[str, FeedWriter] = {
    "rss": write_rss,
    "atom": write_atom,
    "json": write_json_feed,
}
"""Every feed format, by the name `--format` takes."""


def feed_writer(name: str) -> FeedWriter:
    """The feed writer registered as `name`; an error lists the valid names."""
    try:
        return FEED_WRITERS[name]
    except KeyError:
        valid = ", ".join(FEED_WRITERS)
        raise ConvertError(name, f"unknown feed format (valid: {valid})") from None
