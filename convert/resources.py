"""Where the templates and the default config are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped resource (`templates`, `config.yaml`).

    A wheel carries them inside the package; an editable install or a plain
    checkout has them at the top of the repository, where users edit them.
    """
    inside = _PACKAGE / name
    return inside if inside.exists() else _PACKAGE.parent / name
