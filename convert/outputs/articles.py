"""The articles as the model's JSON: what `feedx-convert inspect` prints.

One article is one JSON object, several are a list of them, in reading order.
"""

from __future__ import annotations

import json
from pathlib import Path

from convert.config import ArticlesTarget
from convert.model import Article, to_json
from convert.outputs.base import STDOUT, Files, OutputContext, Taken
from convert.read import Prepare
from convert.report import OutputReport


class ArticlesOutput:
    """A JSON file (or standard output) of the articles."""

    def __init__(self, target: ArticlesTarget, context: OutputContext) -> None:
        self.target = target
        self.report = OutputReport(kind="articles", path=target.path)
        self.files = Files(self.report, context.dry_run)
        self.articles: list[Article] = []

    def prepare(self) -> Prepare | None:
        """Nothing: the articles are written as they are."""
        return None

    def take(self, taken: Taken) -> None:
        """Keep one input's articles."""
        self.articles.extend(taken.articles)

    def produce(self) -> OutputReport:
        """Write the JSON."""
        if not self.articles:
            return self.report
        shown = [to_json(article) for article in self.articles]
        data = shown[0] if len(shown) == 1 else shown
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        if self.target.path == STDOUT:
            self.files.print(text)
        else:
            self.files.write(Path(self.target.path), text)
        return self.report


def open_output(target: ArticlesTarget, section: None, context: OutputContext) -> ArticlesOutput:
    """The JSON output of `target`."""
    return ArticlesOutput(target, context)
