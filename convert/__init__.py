"""feedx-convert: clean feedx.net news articles and republish them.

The package is one pipeline, as its modules say: a `plan` is run by `run`; `sources`
give inputs, `readers` turn them into the `model`, `cleaning` cleans it, `outputs`
(through the pure `writers`) turn it into Markdown, feeds and books; `identity`,
`media`, `net` and the `archive` are the services beneath. See DEVELOPERS.md.
"""

__version__ = "0.1.0"
