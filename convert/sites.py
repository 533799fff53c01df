"""The site rules of the config, looked up by an article's host.

A rule for `nytimes.com` also covers `cn.nytimes.com`; a source's own `rules` lie over
its sites' rules. Readers ask for the publication's facts (name, time zone, language);
cleaning asks for the rest (selectors, substitutions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from convert.config import SiteRules


@dataclass(frozen=True, slots=True)
class Publication:
    """What a reader needs to know of an article's site."""

    name: str
    """Human name of the publication, or its host when the rules name none."""

    zone: ZoneInfo
    """Time zone of its naive times."""

    language: str
    """BCP 47 tag of its text; empty: detect it from the URL and the text."""


@dataclass(frozen=True, slots=True)
class Sites:
    """Rules per host, with a source's own rules over them."""

    table: Mapping[str, SiteRules]
    """The config's `sites`, by lower-case host."""

    default_zone: str
    """The job's `timezone`, for sites without their own."""

    over: SiteRules | None = None
    """The rules of the source being read, over every site's."""

    _seen: dict[str, SiteRules] = field(default_factory=dict, compare=False, repr=False)

    def under(self, rules: SiteRules | None) -> Sites:
        """These sites with `rules` (a source's) over each of them."""
        return self if rules is None else Sites(self.table, self.default_zone, rules)

    def rules(self, host: str) -> SiteRules:
        """The rules that apply to an article from `host` (empty rules for an unknown site)."""
        host = host.lower()
        known = self._seen.get(host)
        if known is not None:
            return known
        labels = host.split(".")
        site = next(
            (
                self.table[".".join(labels[start:])]
                for start in range(len(labels))
                if ".".join(labels[start:]) in self.table
            ),
            SiteRules(),
        )
        if self.over is not None:
            site = _over(site, self.over)
        self._seen[host] = site
        return site

    def publication(self, host: str) -> Publication:
        """The publication at `host`: its name, time zone and language."""
        site = self.rules(host)
        return Publication(
            name=site.name or host.lower(),
            zone=ZoneInfo(site.timezone or self.default_zone),
            language=site.language,
        )


def _over(site: SiteRules, top: SiteRules) -> SiteRules:
    """`top`'s settings where it has them, `site`'s elsewhere."""
    changes = {
        f.name: getattr(top, f.name)
        for f in dataclasses.fields(SiteRules)
        if getattr(top, f.name) != f.default
    }
    return dataclasses.replace(site, **changes)
