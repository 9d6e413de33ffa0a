"""Where and in which language a customer is: the names a browser reports, checked (no I/O).

A time zone is an IANA name the tz database knows (`Europe/Zurich`); a language is a BCP 47 tag
(`de-CH`). Both come from a customer's browser, so both are checked strictly before they are
kept or shown.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import langcodes
import tzdata

#: BCP 47's shape: subtags of letters and digits joined by hyphens (no underscores, which
#: `langcodes` would forgive), at most 35 characters (RFC 5646's advice for a buffer).
_TAG_SHAPE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
MAX_TAG_LENGTH = 35


@cache
def _zones() -> frozenset[str]:
    # The tz database's own list of names (the `tzdata` package: the same on every machine,
    # whatever the OS has), not ZoneInfo(name): a name is never read as a path.
    return frozenset(files(tzdata).joinpath("zones").read_text().split())


def is_time_zone(name: str) -> bool:
    """An IANA time zone name the tz database knows (`UTC`, `Europe/Zurich`)."""
    return name in _zones()


def is_language_tag(tag: str) -> bool:
    """A well-formed, valid BCP 47 language tag (`de`, `de-CH`, `zh-Hant-TW`)."""
    if len(tag) > MAX_TAG_LENGTH or not _TAG_SHAPE.match(tag):
        return False
    return bool(langcodes.tag_is_valid(tag))
