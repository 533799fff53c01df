"""Per-site rules from config: regex substitutions, keep_only, remove, remove_attributes."""

from __future__ import annotations

import re

import lxml.html

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules


def apply_site_rules(draft: Draft, rules: CleanRules) -> None:
    """Apply the article's site rules to its body, in calibre's order."""
    site = rules.site
    if site.regex_replace:
        # Substitutions are on the HTML as text (calibre's preprocess_regexps).
        body = draft.text()
        for rule in site.regex_replace:
            body = re.sub(rule.pattern, rule.replace, body)
        draft.set_text(body)
    if not (site.keep_only or site.remove or site.remove_attributes):
        return
    root = draft.tree()
    if site.keep_only:
        kept = [el for selector in site.keep_only for el in root.cssselect(selector)]
        # An element inside another kept element comes along with it.
        outermost = [el for el in kept if not any(a in kept for a in el.iterancestors())]
        if outermost:
            fresh = lxml.html.Element("div")
            for element in outermost:
                element.tail = None
                fresh.append(element)
            draft.set_tree(fresh)
            root = fresh
    for selector in site.remove:
        for element in root.cssselect(selector):
            if element is not root:
                element.drop_tree()
    if site.remove_attributes:
        names = set(site.remove_attributes)
        for element in root.iter():
            for name in names.intersection(element.attrib):
                del element.attrib[name]
