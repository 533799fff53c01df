"""What cleaning needs from the config: the knowledge each step applies, per article."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from convert.config import ImageProxy, Promo, SiteRules, Trackers
from convert.sites import Sites


@dataclass(frozen=True, slots=True)
class CleanRules:
    """What applies to one article: its site's rules and the job-wide knowledge."""

    promo: Promo
    """How the feedx mirror advertises itself."""

    image_proxies: tuple[ImageProxy, ...]
    """Proxies whose picture URLs carry the origin."""

    image_mirror: str
    """The user's own image mirror template; empty: pictures point at their origin."""

    tracking: tuple[str, ...]
    """Glob patterns of query parameters dropped from every link."""

    trackers: Trackers = field(default_factory=Trackers)
    """Tracking pixels, dropped with every picture declared 1×1 or 0×0."""

    site: SiteRules = field(default_factory=SiteRules)
    """The rules of the article's site (empty rules for an unknown site)."""


@dataclass(frozen=True, slots=True)
class CleanOptions:
    """Cleaning's part of the config, built once; `rules_for` gives each article its rules."""

    sites: Sites
    """Rules per host (with the source's own over them)."""

    everywhere: CleanRules
    """What applies to every article, whatever its site (its `site` is empty)."""

    def rules_for(self, host: str) -> CleanRules:
        """The rules that apply to an article from `host`."""
        return dataclasses.replace(self.everywhere, site=self.sites.rules(host))

    def under(self, rules: SiteRules | None) -> CleanOptions:
        """These options with a source's own `rules` over its sites' rules."""
        return self if rules is None else CleanOptions(self.sites.under(rules), self.everywhere)
