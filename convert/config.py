"""The job's settings and the site rules, read from YAML and checked against a schema.

The shipped `config.yaml` holds every default, including the site rules; a
user's file is laid over it (mappings merge key by key, everything else
replaces). Each key is checked on load: an unknown or misspelled key, a wrong
type, a bad time zone, regex or CSS selector is an error naming the file, the
line and the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from lxml.cssselect import CSSSelector

from convert.errors import ConfigError
from convert.filters import ArticleFilter, check_patterns
from convert.media.memory import PICTURE_WORKERS, PROCESS_MB, picture_memory
from convert.period import parse_period
from convert.resources import resource_path
from convert.script import SCRIPTS
from convert.writers import FEED_FORMATS

# --- checks on single values (raise ValueError with the reason) -----------------------


def _zone(value: str) -> None:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None


def _regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"bad regular expression {value!r}: {error}") from None


def _regexes(values: tuple[str, ...]) -> None:
    for value in values:
        _regex(value)


def _selectors(values: tuple[str, ...]) -> None:
    for value in values:
        try:
            CSSSelector(value)
        except Exception as error:  # cssselect raises several unrelated types
            raise ValueError(f"bad CSS selector {value!r}: {error}") from None


def _mirror_template(value: str) -> None:
    if value and not re.match(r"https?://", value):
        raise ValueError("must start with http:// or https://")
    if value and "{path}" not in value:
        raise ValueError("must contain {path} (and usually {host})")


def _origin_in(value: str) -> None:
    if value not in {"query", "path"}:
        raise ValueError("must be 'query' or 'path'")


def _networks(values: tuple[str, ...]) -> None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not an address or network: {value!r}") from None


class FieldProblem(ValueError):
    """What `check_values` says of one of its fields, told at that field's line."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name


def _security(value: str) -> None:
    if value not in SMTP_SECURITY:
        raise ValueError(f"expected one of {', '.join(SMTP_SECURITY)}")


def _port(value: int) -> None:
    if not 0 < value < 65536:
        raise ValueError("expected a port, 1 to 65535")


_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]+")


def check_address(value: str) -> None:
    """ValueError unless `value` is an e-mail address (`name@host.tld`)."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"not an e-mail address: {value!r}")


def _address(value: str) -> None:
    if value:
        check_address(value)


def _addresses(values: tuple[str, ...]) -> None:
    for value in values:
        check_address(value)


def _environment_name(value: str) -> None:
    if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"not the name of an environment variable: {value!r}")


def _script(value: str) -> None:
    if value not in SCRIPTS:
        raise ValueError(f"expected one of {', '.join(SCRIPTS)}")


def _positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def _check(fn: Callable[[Any], None]) -> dict[str, Any]:
    return {"check": fn}


# A path field: relative values are resolved when loaded (see `_resolve`).
_PATH = {"path": True}


def _feed_format(value: str) -> None:
    if value not in FEED_FORMATS:
        raise ValueError(f"must be one of {', '.join(FEED_FORMATS)}")


def _week(value: str) -> None:
    parse_period(week=value)


def _day(value: str) -> None:
    if value:
        parse_period(since=value, until=value)


def _not_stdout(value: str) -> None:
    if value.strip() == "-":
        raise ValueError("an EPUB is a file: give its path, not - (standard output)")


# --- the schema ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegexReplace:
    """One regular-expression substitution on an article's HTML."""

    pattern: str = field(metadata=_check(_regex))
    """Python regular expression, searched in the body HTML."""

    replace: str = ""
    """Replacement, with `\\1` group references."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteRules:
    """What is special about one publication (calibre's recipe vocabulary)."""

    name: str = ""
    """Human name of the publication; the host when empty."""

    timezone: str = field(default="", metadata=_check(_zone))
    """IANA zone of its naive times (`pudate`); the job's zone when empty."""

    language: str = ""
    """BCP 47 tag of its text; detected from the URL and the text when empty."""

    keep_only: tuple[str, ...] = field(default=(), metadata=_check(_selectors))
    """CSS selectors: when any matches, only the matching elements are kept."""

    remove: tuple[str, ...] = field(default=(), metadata=_check(_selectors))
    """CSS selectors of elements to delete with their content."""

    remove_attributes: tuple[str, ...] = ()
    """Attribute names to delete from every element."""

    regex_replace: tuple[RegexReplace, ...] = ()
    """Substitutions applied to the body HTML before anything else."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageProxy:
    """An image proxy or CDN whose URLs carry the picture's origin address."""

    hosts: tuple[str, ...]
    """Exact host names; nothing else is unwrapped."""

    origin_in: str = field(metadata=_check(_origin_in))
    """`query`: the origin is a query parameter; `path`: the origin is `/host/path`."""

    parameter: str = "url"
    """The query parameter holding the origin, for `origin_in: query`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Promo:
    """How the feedx mirror advertises itself inside articles."""

    hosts: tuple[str, ...]
    """Its own domains: links to them are promotion, never content."""

    markers: tuple[str, ...]
    """Text that starts the promotion block (`获取更多RSS`)."""

    leading_stamp: str = field(metadata=_check(_regex))
    """Regex of the `快讯` date stamp some mirrors put before the first paragraph."""

    in_channel: str = field(default="", metadata=_check(_regex))
    """Regex of what the mirror adds to a feed's title and description (` - feedx`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trackers:
    """Pictures that only count their readers (tracking pixels): never content."""

    hosts: tuple[str, ...] = ()
    """Hosts (and their sub-domains) that serve nothing else."""

    patterns: tuple[str, ...] = field(default=(), metadata=_check(_regexes))
    """Regular expressions of tracking-pixel addresses on hosts that also serve pictures."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Kindle:
    """What Send to Kindle takes: checked before a book is mailed (`feedx-convert check`)."""

    languages: tuple[str, ...] = ()
    """Primary language subtags Kindle converts (Amazon's KDP list): a book in another is
    refused."""

    max_mb: float = field(default=50.0, metadata=_check(_positive))
    """Largest book mailed to a Kindle, in MB (Send to Kindle by e-mail: 50)."""

    domains: tuple[str, ...] = ("kindle.com", "free.kindle.com")
    """Mail domains of Send to Kindle: their addresses get `max_mb` and the preflight."""


SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class Smtp:
    """The mail server books are sent through (`feedx-convert send`, `send_to`)."""

    host: str = ""
    """The server's name; empty: no book is mailed."""

    port: int = field(default=587, metadata=_check(_port))
    """Its port: 587 for starttls, 465 for tls."""

    security: str = field(default="starttls", metadata=_check(_security))
    """starttls (upgrade a plain connection), tls (TLS from the start) or none."""

    username: str = ""
    """The login; empty: no login."""

    password_env: str = field(default="", metadata=_check(_environment_name))
    """The name of the environment variable holding the password (never the password)."""

    sender: str = field(default="", metadata={"yaml": "from", **_check(_address)})
    """The From address: the one approved in Amazon's settings (`from:` in the file)."""

    timeout: float = field(default=30.0, metadata=_check(_positive))
    """Seconds to wait for the server at each step."""

    max_mb: float = field(default=25.0, metadata=_check(_positive))
    """Largest mail to an address that is not a Kindle's (those: kindle.max_mb)."""

    retries: int = 3
    """More attempts after a temporary failure (4xx, a dropped connection, a timeout)."""

    backoff: float = field(default=2.0, metadata=_check(_positive))
    """Seconds before the first retry; each later one waits twice as long."""

    ca_file: str = field(default="", metadata=_PATH)
    """Certificates to trust besides the system's (a private server's own CA)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """Limits of the one downloader (images, and feeds in later commands)."""

    timeout: float = field(metadata=_check(_positive))
    """Seconds to wait for a connection and for each read."""

    max_bytes: int = field(metadata=_check(_positive))
    """Largest response body accepted, in bytes."""

    max_redirects: int
    """Redirects followed before giving up."""

    allow_private: bool
    """Allow loopback, private and link-local addresses (tests, intranets)."""

    allow_networks: tuple[str, ...] = field(default=(), metadata=_check(_networks))
    """Networks allowed although not public (`10.1.2.0/24`), when allow_private is false."""

    retries: int
    """Further attempts after a 5xx answer, a timeout or a failed connection."""

    backoff: float
    """Seconds before the first retry; each later retry waits twice as long."""

    deadline: float = field(default=60.0, metadata=_check(_positive))
    """Seconds one download may take in all: redirects, retries and a slow body included."""

    retry_after_max: float = field(default=30.0, metadata=_check(_positive))
    """Longest `Retry-After` of a 429 or 503 waited for; a longer one skips the item."""

    run_deadline: float = field(default=300.0, metadata=_check(_positive))
    """Seconds all downloads of one run may take together; the rest are then skipped."""

    cache_dir: str
    """Folder of the conditional-GET cache for feeds; empty: the user's cache folder."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedOutput:
    """Defaults of the feeds this tool writes."""

    max_items: int = field(metadata=_check(_positive))
    """Most items kept in a written feed (old items beyond it drop out)."""

    stale_after_days: int = field(metadata=_check(_positive))
    """Warn when a source's newest item is older than this many days."""

    self_url: str
    """Where the written feed will be published (`atom:link rel="self"`); may be empty."""

    lock_wait: float = field(default=60.0, metadata=_check(_positive))
    """Seconds to wait while another process writes a feed in the same folder."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpubOutput:
    """Defaults of the EPUB digests this tool writes."""

    name: str
    """The masthead on the cover and in the title (`feedx 周报`)."""

    language: str
    """The digest's language (`zh-Hans`, `zh-Hant`); empty: most articles' language."""

    budget_mb: float = field(metadata=_check(_positive))
    """Largest book in megabytes; pictures are recompressed to fit (Kindle e-mail: 50)."""

    grayscale: bool
    """Gray pictures, for e-ink: smaller and no worse to look at there."""

    vertical: bool
    """Vertical writing with a right-to-left spine."""

    max_pictures: int = field(metadata=_check(_positive))
    """Most pictures in one book; the rest become links to the original."""

    picture_width: int = field(metadata=_check(_positive))
    """Pictures are downscaled to fit this width in pixels..."""

    picture_height: int = field(metadata=_check(_positive))
    """... and this height (an e-reader's screen)."""

    font: str
    """A CJK font file for the cover; empty: look for one on the system."""

    script: str = field(default="keep", metadata=_check(_script))
    """zh-Hans, zh-Hant (-TW, -HK: with that vocabulary) or keep: the Chinese script of
    the book, every article in the other one converted (OpenCC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Filtering:
    """Which articles a source or an output takes (see `convert.filters`)."""

    include: tuple[str, ...] = field(default=(), metadata=_check(check_patterns))
    """Only articles with one of these words (or `/regex/`) in their title, authors, tags
    or text; empty: every article."""

    exclude: tuple[str, ...] = field(default=(), metadata=_check(check_patterns))
    """Not the articles with any of these words (or `/regex/`)."""

    max_age_days: int | None = field(default=None, metadata=_check(_positive))
    """Not the articles dated more than this many days before the run."""

    def article_filter(self) -> ArticleFilter:
        """These settings as the filter that applies them."""
        return ArticleFilter(self.include, self.exclude, self.max_age_days)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(Filtering):
    """One input of the main job."""

    path: str = field(metadata=_PATH)
    """A file, a glob (`examples/*.txt`), a folder, an OPML list, or an http(s) URL."""

    name: str = ""
    """What the summary calls it; the path when empty."""

    enabled: bool = True
    """False skips the source without deleting it from the file."""

    max_items: int = 0
    """Take only the newest this many articles; 0 takes all."""

    rules: SiteRules | None = None
    """Rules for this source's articles, over its sites' rules (timezone, remove, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedTarget(Filtering):
    """A feed the main job writes."""

    path: str = field(metadata=_PATH)
    """The feed file (`-`: standard output, merged with nothing)."""

    format: str = field(default="rss", metadata=_check(_feed_format))
    """rss, atom or json."""

    self_url: str = ""
    """Where it is published (atom:link rel=self); the feed section's when empty."""

    title: str = ""
    """The feed's title; empty: the feed's own when all items come from one feed, else
    `feedx-convert`."""

    link: str = ""
    """The home page the feed belongs to; empty: the one feed's own, else `self_url`."""

    max_items: int | None = field(default=None, metadata=_check(_positive))
    """Most items kept; the feed section's `max_items` when not given."""

    script: str = field(default="keep", metadata=_check(_script))
    """The feed's Chinese script (zh-Hans, zh-Hant, zh-Hant-TW, zh-Hant-HK) or keep."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkdownTarget(Filtering):
    """A folder of Markdown files the main job writes."""

    folder: str = field(metadata=_PATH)
    """Where the `.md` files go (`-`: one article to standard output)."""

    download_images: bool = False
    """Save pictures in `assets/` beside them."""

    script: str = field(default="keep", metadata=_check(_script))
    """The files' Chinese script (zh-Hans, zh-Hant, zh-Hant-TW, zh-Hant-HK) or keep."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpubTarget(Filtering):
    """An EPUB digest: from the archive in the main job, from its inputs for `epub FILES`."""

    path: str = field(metadata={**_PATH, "check": _not_stdout})
    """The book; `{period}` is replaced by its week or dates (`digest-{period}.epub`)."""

    week: str = field(default="", metadata=_check(_week))
    """latest (the newest article's week; the default), last (the last whole week),
    all (every article), or an ISO week such as 2024-W21."""

    since: str = field(default="", metadata=_check(_day))
    """With `until`, a window of days instead of a week (YYYY-MM-DD)."""

    until: str = field(default="", metadata=_check(_day))
    """The window's last day, included."""

    budget_mb: float | None = field(default=None, metadata=_check(_positive))
    """Largest book in MB; the epub section's `budget_mb` when not given."""

    vertical: bool | None = None
    """Vertical writing with a right-to-left spine; the epub section's when not given."""

    grayscale: bool | None = None
    """Gray pictures; the epub section's when not given."""

    pictures: bool = True
    """Embed pictures; false leaves each as a link to the original (no downloads)."""

    send_to: tuple[str, ...] = field(default=(), metadata=_check(_addresses))
    """Addresses the book is mailed to once written (through `smtp:`), each book once."""

    def check_values(self) -> None:
        """A week or a window of days, spelled as `parse_period` reads them."""
        parse_period(self.week, self.since, self.until)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticlesTarget:
    """The articles as the model's JSON (what `feedx-convert inspect` prints)."""

    path: str = field(metadata=_PATH)
    """The JSON file (`-`: standard output)."""


Target = FeedTarget | MarkdownTarget | EpubTarget | ArticlesTarget
"""What one output writes, as the config (or a command's flags) says."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """One output of the main job: exactly one of its kinds (the names of `outputs.OUTPUTS`)."""

    feed: FeedTarget | None = None
    """Write a feed."""

    markdown: MarkdownTarget | None = None
    """Write Markdown files."""

    epub: EpubTarget | None = None
    """Write an EPUB digest."""

    articles: ArticlesTarget | None = None
    """Write the articles as JSON."""

    def check_values(self) -> None:
        """Exactly one kind per entry."""
        if len(self.chosen()) != 1:
            kinds = ", ".join(f.name for f in dataclasses.fields(self))
            raise ValueError(f"each output is exactly one of {kinds}")

    def chosen(self) -> list[tuple[str, Target]]:
        """The kind given, with its target: `[("feed", FeedTarget(...))]`."""
        return [
            (f.name, value)
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """One job's settings."""

    timezone: str = field(metadata=_check(_zone))
    """IANA zone of naive times from sites without their own `timezone`."""

    max_input_bytes: int = field(metadata=_check(_positive))
    """Largest input file read, in bytes."""

    memory_mb: float = field(default=500, metadata=_check(_positive))
    """Memory a run may use, in MB: what is left beside the rest of the process and the
    downloads in flight bounds the pictures being decoded at once."""

    image_mirror: str = field(metadata=_check(_mirror_template))
    """Your own image mirror, `https://img.example.org/{host}{path}`; empty: origins."""

    image_proxies: tuple[ImageProxy, ...]
    """Proxies whose URLs are rewritten to the origin (or to `image_mirror`)."""

    promo: Promo
    """The mirror's own promotion, stripped from every article."""

    tracking_parameters: tuple[str, ...]
    """Glob patterns of query parameters dropped from links (`utm_*`)."""

    trackers: Trackers = field(default_factory=Trackers)
    """Tracking pixels, dropped from every article (and any picture declared 1×1 or 0×0)."""

    download: Download
    """Downloader limits."""

    feed: FeedOutput
    """Defaults for `feedx-convert feed`."""

    epub: EpubOutput
    """Defaults for `feedx-convert epub`."""

    kindle: Kindle = field(default_factory=Kindle)
    """What Send to Kindle takes."""

    smtp: Smtp = field(default_factory=Smtp)
    """The mail server books are sent through."""

    archive: str = field(metadata=_PATH)
    """The SQLite archive of ingested articles; empty: the user's data folder."""

    sources: tuple[Source, ...] = ()
    """The main job's inputs (`feedx-convert run`)."""

    outputs: tuple[Output, ...] = ()
    """The main job's outputs."""

    sites: Mapping[str, SiteRules] = field(default_factory=dict)
    """Rules per host; a rule for `nytimes.com` also covers `cn.nytimes.com`."""

    def check_values(self) -> None:
        """Room for pictures in `memory_mb`."""
        if picture_memory(self.memory_mb, self.download.max_bytes) <= 0:
            raise FieldProblem(
                "memory_mb",
                f"{self.memory_mb:g} MB leaves no room for decoding pictures beside"
                f" {PROCESS_MB} MB for the rest of the process and"
                f" {PICTURE_WORKERS * self.download.max_bytes / 1e6:g} MB for the downloads"
                f" in flight ({PICTURE_WORKERS} × download.max_bytes)",
            )


# --- loading --------------------------------------------------------------------------

DEFAULT_CONFIG = "config.yaml"


def load_config(path: Path | None = None) -> Config:
    """The shipped defaults, with the file at `path` laid over them when given."""
    base = _compose(resource_path(DEFAULT_CONFIG))
    if path is not None:
        base = _overlay(base, _compose(path))
    config: Config = _build(Config, base, "", {})
    return config


# Bounds on a config file: far above any real job (the shipped one is 9 KB, about
# 220 values, 5 levels deep), far below what makes loading slow or deep.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 32
MAX_CONFIG_VALUES = 100_000  # counted with every alias expanded
MAX_CONFIG_NUMBER = 10**15
# The tags a config may use: YAML's own for what the schema reads. `!!python/...`
# and `!custom` are refused: a setting is data, never an object to make.
_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


def _compose(path: Path) -> yaml.Node:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(str(path), f"config is larger than {MAX_CONFIG_BYTES:,} bytes")
        # A file handle (not its text) gives the marks its name for error messages.
        with open(path, encoding="utf-8") as handle:
            node = yaml.compose(handle, Loader=yaml.SafeLoader)
    except OSError as error:
        raise ConfigError(str(path), f"cannot read config: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "config is not UTF-8") from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), f"not valid YAML: {error}".replace("\n", " ")) from None
    except RecursionError:  # PyYAML's composer recurses once per level
        raise ConfigError(str(path), f"nested deeper than {MAX_CONFIG_DEPTH} levels") from None
    if node is None:
        node = yaml.MappingNode("tag:yaml.org,2002:map", [])
    _check_shape(node)
    return node


def _check_shape(root: yaml.Node) -> None:
    """Refuse other tags, deep nesting and alias bombs, each node looked at once."""
    # An alias is the node it names, shared: sizes are counted per node, then summed,
    # so that a file of aliases of aliases costs its size, not its expansion.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the nodes whose children are being looked at
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[id(node)] > MAX_CONFIG_VALUES:
                raise _fail(node, "", f"more than {MAX_CONFIG_VALUES:,} values (aliases included)")
            continue
        if id(node) in open_nodes:
            raise _fail(node, "", "an alias that holds itself")
        if id(node) in sizes:
            continue
        if node.tag not in _STANDARD_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")  # as it was written
            raise _fail(node, "", f"YAML tag {tag} is not allowed in a config")
        if depth > MAX_CONFIG_DEPTH:
            raise _fail(node, "", f"nested deeper than {MAX_CONFIG_DEPTH} levels")
        open_nodes.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _overlay(base: yaml.Node, top: yaml.Node) -> yaml.Node:
    if not (isinstance(base, yaml.MappingNode) and isinstance(top, yaml.MappingNode)):
        return top
    merged: dict[str, tuple[yaml.Node, yaml.Node]] = {
        str(key.value): (key, value) for key, value in base.value
    }
    for key, value in top.value:
        name = str(key.value)
        merged[name] = (key, _overlay(merged[name][1], value) if name in merged else value)
    return yaml.MappingNode(top.tag, list(merged.values()), top.start_mark, top.end_mark)


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{mark.name}:{mark.line + 1}"


def _fail(node: yaml.Node, key: str, reason: str) -> ConfigError:
    label = f"{key}: " if key else ""
    return ConfigError(_where(node), f"{label}{reason}")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _scalar(node: yaml.Node, key: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(node, key, "expected a single value")
    value = yaml.SafeLoader("").construct_object(node)
    if isinstance(value, str):

        def expand(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise _fail(node, key, f"environment variable {name} is not set")
            return os.environ[name]

        value = _ENV.sub(expand, value)
    return value


Built = dict[tuple[int, Any], Any]
"""What was built from each node for each type: an alias is checked once, not per use."""


def _build(hint: Any, node: yaml.Node, key: str, built: Built) -> Any:
    done = (id(node), hint)
    if done not in built:
        built[done] = _build_new(hint, node, key, built)
    return built[done]


def _build_new(hint: Any, node: yaml.Node, key: str, built: Built) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, node, key, built)
    if origin is tuple:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(node, key, "expected a list")
        inner = typing.get_args(hint)[0]
        return tuple(_build(inner, item, f"{key}[{i}]", built) for i, item in enumerate(node.value))
    if origin in (Mapping, dict):
        if not isinstance(node, yaml.MappingNode):
            raise _fail(node, key, "expected a mapping")
        inner = typing.get_args(hint)[1]
        return {
            str(k.value).lower(): _build(inner, v, f"{key}.{k.value}", built) for k, v in node.value
        }
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported config type {hint}")  # keep the schema simple
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return None
        return _build(inner[0], node, key, built)
    value = _scalar(node, key)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _fail(node, key, "expected text")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(node, key, "expected true or false")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(node, key, "expected a number")
        if hint is int and not isinstance(value, int):
            raise _fail(node, key, "expected a whole number")
        if not math.isfinite(value):  # .nan passes every comparison check as False
            raise _fail(node, key, "expected a finite number")
        if abs(value) > MAX_CONFIG_NUMBER:
            raise _fail(node, key, f"too large (at most {MAX_CONFIG_NUMBER:.0e})")
        return hint(value)
    raise TypeError(f"unsupported config type {hint}")


def _build_dataclass(cls: Any, node: yaml.Node, key: str, built: Built) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(node, key, "expected a mapping")
    # A field may go by another name in the file (`from`, a Python keyword).
    fields = {f.metadata.get("yaml", f.name): f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        written = str(key_node.value)
        path = f"{key}.{written}" if key else written
        if written not in fields:
            valid = ", ".join(sorted(fields))
            raise _fail(key_node, path, f"unknown key (valid keys here: {valid})")
        spec = fields[written]
        value = _build(hints[spec.name], value_node, path, built)
        if spec.metadata.get("path") and value:
            value = _resolve(value, value_node)
        check = spec.metadata.get("check")
        if check is not None and value is not None:
            try:
                check(value)
            except ValueError as error:
                raise _fail(value_node, path, str(error)) from None
        values[spec.name] = value
    missing = [
        written
        for written, f in fields.items()
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise _fail(node, key, f"missing key(s): {', '.join(missing)}")
    built = cls(**values)
    if hasattr(built, "check_values"):
        try:
            built.check_values()
        except FieldProblem as error:
            nodes = {str(k.value): v for k, v in node.value}
            path = f"{key}.{error.name}" if key else error.name
            raise _fail(nodes.get(error.name, node), path, str(error)) from None
        except ValueError as error:
            raise _fail(node, key, str(error)) from None
    return built


def _resolve(value: str, node: yaml.Node) -> str:
    """A relative path from a user's file is relative to that file's folder; from the
    shipped config (which may live inside an installed package), to the current one."""
    if re.match(r"https?://", value) or value == "-":
        return value  # an address, or standard input or output
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    origin = Path(node.start_mark.name)
    if origin.resolve() == resource_path(DEFAULT_CONFIG).resolve():
        return value
    return str(origin.parent / path)
