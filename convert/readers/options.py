"""What the readers need from the config: the sites' facts and the rules of identity."""

from __future__ import annotations

from dataclasses import dataclass

from convert.config import SiteRules
from convert.identity import Identity
from convert.sites import Sites


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """The readers' part of the config, built once."""

    sites: Sites
    """Per host: the publication's name, time zone and language."""

    identity: Identity
    """How an article's canonical URL and id are made."""

    def under(self, rules: SiteRules | None) -> ReadOptions:
        """These options with a source's own `rules` over its sites' rules."""
        return self if rules is None else ReadOptions(self.sites.under(rules), self.identity)
