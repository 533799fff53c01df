"""Shared fixtures: the shipped config and builders for articles made in tests."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert.config import Config, Target, load_config
from convert.identity import Identity
from convert.model import Article
from convert.plan import command_plan, settings_of
from convert.read import ReadInput
from convert.report import RunReport
from convert.run import read_articles, run_plan
from convert.urls import host_of, stable_id


@pytest.fixture(autouse=True)
def _restore_convert_logger() -> Iterator[None]:
    """`main()` sets up the "convert" logger for a terminal; later tests need it as it was."""
    logger = logging.getLogger("convert")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver's server on 127.0.0.1 exactly (its default is `localhost`)."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def config() -> Config:
    """The shipped config.yaml."""
    return load_config()


def make_article(
    body: str, url: str = "https://cn.nytimes.com/world/20240520/x/", **fields: Any
) -> Article:
    """An article with `body`, as a reader would build it."""
    values: dict[str, Any] = {
        "id": stable_id(url),
        "title": "标题",
        "url": url,
        "canonical_url": Identity((), ()).canonical_url(url),
        "language": "zh-Hans",
        "source_name": host_of(url),
        "source_host": host_of(url),
        "body": body,
        "published": datetime(2024, 5, 20, 1, 52, 45, tzinfo=UTC),
    }
    values.update(fields)
    return Article(**values)


def read_source(name: str, config: Config) -> ReadInput:
    """One input read and cleaned as a run reads it (its articles, and the feeds it names)."""
    return read_articles(name, settings_of(config))


def run_command(
    config: Config, inputs: list[str], kind: str, target: Target, **options: Any
) -> RunReport:
    """A command's plan (its inputs, one output) run as the command line runs it."""
    return run_plan(command_plan(config, tuple(inputs), (kind, target), **options))


def feedx_dump(
    html: str,
    *,
    title: str = "标题",
    url: str = "https://cn.nytimes.com/world/20240520/x/",
    stamp: str = "1716170821000",
) -> bytes:
    """A feedx article file around `html`."""
    return f"<!--{stamp}-->\n[{title}]({url})\n------\n\n{html}\n".encode()


def read_request_head(conn: socket.socket) -> bytes | None:
    """A request's line and headers, up to the blank line; None when the client hung up
    first. (For the hand-made test servers that must see every connection.)"""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        head += chunk
    return head


def accepted(sock: socket.socket, stop: threading.Event) -> Iterator[socket.socket]:
    """Connections accepted on `sock` (which has a timeout) until `stop` is set or the
    socket is closed."""
    while not stop.is_set():
        try:
            conn, _peer = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        yield conn
