"""Which language an article is in: the URL's edition marker first, then the text."""

from __future__ import annotations

import re

from convert.text import CJK_LETTERS

# Edition markers in the URL path, as the publishers spell them.
_URL_MARKERS = (
    (re.compile(r"/(zh-hant|zh-tw|zh-hk|trad)(/|$)", re.I), "zh-Hant"),
    (re.compile(r"/(zh-hans|zh-cn|simp)(/|$)", re.I), "zh-Hans"),
    (re.compile(r"/dual(/|$)", re.I), "zh-Hans"),
)

# Frequent characters that exist in only one of the two scripts (pairs in order),
# counted by regular expression (a loop over 20,000 characters in Python is slow).
_SIMPLIFIED = re.compile(
    "[这们说国会时个来对为与发经过还进后见门问间关东车长马鸟鱼书话语让认设讲证该请读谁论议]"
)
_TRADITIONAL = re.compile(
    "[這們說國會時個來對為與發經過還進後見門問間關東車長馬鳥魚書話語讓認設講證該請讀誰論議]"
)
# "At least 20 CJK letters", matched in C without listing every one of them.
_TWENTY_CJK = re.compile(f"(?:[^{CJK_LETTERS}]*[{CJK_LETTERS}]){{20}}")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def detect_language(url: str, text: str) -> str:
    """BCP 47 tag for an article: `zh-Hans`, `zh-Hant`, `en`, or `und`."""
    for pattern, tag in _URL_MARKERS:
        if pattern.search(url):
            return tag
    sample = text[:20000]
    if _TWENTY_CJK.match(sample):
        simplified = len(_SIMPLIFIED.findall(sample))
        traditional = len(_TRADITIONAL.findall(sample))
        return "zh-Hant" if traditional > simplified else "zh-Hans"
    if len(_LATIN_WORD.findall(sample)) >= 20:
        return "en"
    return "und"
