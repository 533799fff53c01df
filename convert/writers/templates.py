"""The Jinja2 environment over `templates/`, shared by the HTML-writing writers."""

from __future__ import annotations

import functools

import jinja2

from convert.resources import resource_path


@functools.cache
def templates() -> jinja2.Environment:
    """The Jinja2 environment over `templates/`, escaping HTML."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_path("templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )
