"""The network beneath every download: which addresses may be reached (`policy`), the
connections that enforce it (`transport`), and the one client (`client`) with its
decoding (`inflate`) and its conditional-GET cache (`cache`).

Nothing here imports a reader, a cleaning step or an output; `transport` (httpx) is
loaded with the first request only.
"""
