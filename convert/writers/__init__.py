"""Writers: the model in, bytes or text out; they never change it, and never fetch.

One table names the feed formats; each writer is imported when first used (feedgen
costs start-up a run without feeds need not pay).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any, cast

from convert.errors import ConvertError
from convert.model import Feed

FeedWriter = Callable[[Feed], bytes]

FEED_FORMATS: dict[str, str] = {
    "rss": "convert.writers.rss:write_rss",
    "atom": "convert.writers.rss:write_atom",
    "json": "convert.writers.jsonfeed:write_json_feed",
}
"""Every feed format, by the name `--format` and `format:` take: its writer's module and name."""


def feed_writer(name: str) -> FeedWriter:
    """The feed writer registered as `name`; an error lists the valid names."""
    if name not in FEED_FORMATS:
        valid = ", ".join(FEED_FORMATS)
        raise ConvertError(name, f"unknown feed format (valid: {valid})")
    module, _, function = FEED_FORMATS[name].partition(":")
    return cast(FeedWriter, getattr(importlib.import_module(module), function))


class _LoadedOnFirstUse(types.ModuleType):
    """A module whose code runs when one of its names is first looked up.

    (importlib's LazyLoader would not do: an `import` of it reads `__spec__`, and that
    alone runs the module's code.) For a module used through its own names, as bs4
    uses soupsieve's.
    """

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]  # so that the import below runs the real code
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)


# bs4 (which the Markdown writer uses through markdownify) imports soupsieve for CSS
# selectors, which we never use, and soupsieve compiles its grammar when imported: 60 ms,
# a fifth of the markdown command's start-up. Every writer is imported after this.
if "soupsieve" not in sys.modules and importlib.util.find_spec("soupsieve") is not None:
    sys.modules["soupsieve"] = _LoadedOnFirstUse("soupsieve")
