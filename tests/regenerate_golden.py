"""Rewrite tests/golden/ from examples/: run `make golden`, then review `git diff`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goldens import (
    EXAMPLES,
    FEED_EXAMPLES,
    GOLDEN,
    ROOT,
    article_json,
    article_of,
    feed_goldens,
    feed_outputs,
    golden_paths,
)

from convert.writers.markdown import render_markdown


def main() -> None:
    """Write the Article JSON and Markdown of every example."""
    os.chdir(ROOT)  # paths in messages are relative, as in the tests
    GOLDEN.mkdir(exist_ok=True)
    for example in EXAMPLES:
        article = article_of(example)
        json_path, md_path = golden_paths(example)
        json_path.write_text(article_json(article), encoding="utf-8")
        md_path.write_text(render_markdown(article), encoding="utf-8")
        print(f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory() as tmp:
        for example in FEED_EXAMPLES:
            outputs = feed_outputs(example, Path(tmp))
            for kind, path in feed_goldens(example).items():
                path.write_bytes(outputs[kind])
                print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
