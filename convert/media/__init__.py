"""Pictures, beside the documents (as pandoc's MediaBag): one intake for every output.

`intake` fetches (through the one downloader), `prepare` checks and converts, `cache`
remembers, `fit` shrinks to a budget; `picture` is what outputs and writers receive.
Writers import `picture` only, never the downloader.
"""
