"""feedx-convert: clean feedx.net news articles and republish them.

The package is a pipeline, as its folders say: `readers` turn inputs into the
`model`, `transforms` clean it, `writers` turn it into Markdown, feeds and books.
"""

__version__ = "0.1.0"
