"""A small multilingual dictionary of shop concepts: the bridge between the six languages.

Each concept lists word stems, as they look after :func:`features.normalize` (lower case, no
diacritics), in English, German, French, Swedish, Vietnamese and Spanish. A stem matches at the
start of a word; a stem ending in ``$`` must also end the word. Every concept found in a message
adds one feature ``@concept``; what a concept says about the topic is *learned*, from all six
languages at once, so a phrasing seen in one language helps the others.

The dictionary is written into the trained artifact, so a model always runs with the dictionary
it was trained with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The dictionary, by group of topics (a data file: the words change with the training data).
CONCEPTS_FILE = Path(__file__).with_name("concepts.json")


def load_concepts(path: Path = CONCEPTS_FILE) -> dict[str, list[str]]:
    """Concept name → stems, in the file's order (its groups are for the reader)."""
    groups = json.loads(path.read_text(encoding="utf-8"))
    return {name: stems for group in groups.values() for name, stems in group.items()}


CONCEPTS: dict[str, list[str]] = load_concepts()


class Lexicon:
    """The concepts of a text (normalised as by :func:`features.normalize`).

    Stems are looked up at every word start through an index on their first two characters,
    so finding the concepts of a message costs a few dictionary look-ups per word.
    """

    def __init__(self, concepts: Mapping[str, Sequence[str]]) -> None:
        self.concepts = {k: list(v) for k, v in concepts.items()}
        index: dict[str, list[tuple[str, bool, str]]] = {}
        for name, stems in self.concepts.items():
            for stem in stems:
                bounded = stem.endswith("$")
                text = stem.rstrip("$")
                if len(text) < 2:
                    raise ValueError(f"stem too short: {stem!r}")
                index.setdefault(text[:2], []).append((text, bounded, name))
        self._index = {k: sorted(v, key=lambda e: -len(e[0])) for k, v in index.items()}

    def find(self, normalized: str) -> list[str]:
        index, found = self._index, set()
        for match in _WORD_START.finditer(normalized):
            pos = match.start()
            for stem, bounded, name in index.get(normalized[pos : pos + 2], ()):
                if name in found or not normalized.startswith(stem, pos):
                    continue
                end = pos + len(stem)
                if bounded and end < len(normalized) and normalized[end].isalnum():
                    continue
                found.add(name)
        return sorted(found)


_WORD_START = re.compile(r"(?<![^\W_])[^\W_]")
