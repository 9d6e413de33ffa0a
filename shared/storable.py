"""Which text the system can keep: one rule for every way in.

PostgreSQL refuses NUL (U+0000) in `text` and in `jsonb`, and an unpaired surrogate
(U+D800 to U+DFFF) cannot be encoded as UTF-8 at all, so no topic, table or page could carry
either. The HTTP guard refuses them in requests and the contracts in events, so whatever is
accepted can be stored by every consumer.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

NUL = "NUL characters are not allowed (they cannot be stored)"
SURROGATE = "unpaired surrogates are not allowed (they are not valid Unicode)"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL if found.group() == "\x00" else SURROGATE


def value_problem(value: Any) -> str | None:
    """The first reason any text in `value` (strings, and lists, tuples and dicts of them, keys
    included, however nested) cannot be stored; None when all of it can. Other values (numbers,
    models that checked themselves) are not looked into."""
    pending = [value]
    while pending:  # a stack, not recursion: the depth of the value does not matter
        item = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return None
