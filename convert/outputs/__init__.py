"""Outputs: what a run writes. One table names every kind; each is one module.

A kind's module has `open_output(target, section, context) -> Output` (see `base`):
the target as the config or a command's flags give it, the config section of the
kind's defaults (or None), and what the run shares. Modules are imported when a plan
uses them: a Markdown conversion never loads the EPUB writer.

A new kind: its module here, a row in OUTPUTS, and its target in `config.Output`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from convert.errors import ConvertError
from convert.outputs.base import Output, OutputContext


@dataclass(frozen=True, slots=True)
class OutputKind:
    """Where a kind of output is made, and which config section holds its defaults."""

    module: str
    """The module with its `open_output`."""

    section: str = ""
    """The config section of its defaults (`feed:`, `epub:`), or empty."""


OUTPUTS: dict[str, OutputKind] = {
    "feed": OutputKind("convert.outputs.feed", section="feed"),
    "markdown": OutputKind("convert.outputs.markdown"),
    "epub": OutputKind("convert.outputs.epub", section="epub"),
    "articles": OutputKind("convert.outputs.articles"),
}
"""Every kind of output, by the name the config's `outputs:` entries use."""


def output_kind(name: str) -> OutputKind:
    """The kind registered as `name`; an error lists the valid names."""
    try:
        return OUTPUTS[name]
    except KeyError:
        valid = ", ".join(OUTPUTS)
        raise ConvertError(name, f"unknown output (valid: {valid})") from None


def open_output(name: str, target: Any, section: Any, context: OutputContext) -> Output:
    """The output of kind `name` for `target`, its module imported now."""
    module = importlib.import_module(output_kind(name).module)
    output: Output = module.open_output(target, section, context)
    return output
