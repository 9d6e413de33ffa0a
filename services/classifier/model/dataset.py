"""The classifier's data: hand-written sources, expanded and split into train and held-out files.

Sources are ``data/sources/<lang>.txt``, one message per line, under ``@topic <key>`` headers
(``@topic none`` for messages without a topic). A line with ``{slot}`` placeholders is a
template: it is expanded a few times with values of the slot (``@slot name: a | b | c`` in the
same file, or a built-in such as ``{order}``). A line starting with ``+`` is a variant of the line
before it. A line, its variants and all expansions of a template form one *group*; the split is
made by group (a hash of its first line), so near-duplicates never straddle train and held-out.

``build()`` writes ``data/train.jsonl``, ``data/calibration.jsonl`` (groups the model is not
trained on, used only to fit its probability calibration) and ``data/heldout.jsonl``; the same
sources always give the same files. ``data/probe.jsonl`` and ``data/unseen.jsonl`` are written by
hand and never produced here.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.classifier.model import TOPICS

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SOURCES_DIR = DATA_DIR / "sources"
TRAIN_FILE = DATA_DIR / "train.jsonl"
HELDOUT_FILE = DATA_DIR / "heldout.jsonl"
CALIBRATION_FILE = DATA_DIR / "calibration.jsonl"
PROBE_FILE = DATA_DIR / "probe.jsonl"
UNSEEN_FILE = DATA_DIR / "unseen.jsonl"
LANGUAGES = ("en", "de", "fr", "sv", "vi", "es", "it", "nl", "pt")
HELDOUT_PERCENT = 25
CALIBRATION_PERCENT = 15  # the groups just above the held-out ones
EXPANSIONS = 3
NONE = "none"

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    topic: str | None
    lang: str
    group: str = ""

    def to_json(self) -> str:
        record = {"text": self.text, "topic": self.topic, "lang": self.lang}
        if self.group:
            record["group"] = self.group
        return json.dumps(record, ensure_ascii=False)


def _builtin_slot(name: str, rng: random.Random) -> str | None:
    if name == "order":
        number = rng.choice([rng.randint(1001, 9999), rng.randint(10000, 99999)])
        return rng.choice(["#{}", "#{}", "{}", "#{}", "nr {}", "no. {}"]).format(number)
    if name == "qty":
        return str(rng.choice([20, 24, 30, 40, 50, 60, 100, 120, 150, 200, 250, 300, 500, 1000]))
    if name == "n":
        return str(rng.randint(2, 6))
    if name == "days":
        return str(rng.choice([2, 3, 4, 5, 7, 8, 10, 12, 14, 15, 20]))
    if name == "price":
        return rng.choice(["{}", "{}.99", "{},90", "{}.50", "{}"]).format(rng.randint(9, 249))
    return None


def _expand(template: str, slots: dict[str, list[str]], rng: random.Random) -> list[str]:
    out: list[str] = []
    for _ in range(EXPANSIONS * 4):
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in slots:
                return rng.choice(slots[name])
            value = _builtin_slot(name, rng)
            if value is None:
                raise ValueError(f"unknown slot {{{name}}} in {template!r}")
            return value

        text = _SLOT.sub(fill, template)
        if text not in out:
            out.append(text)
        if len(out) == EXPANSIONS:
            break
    return out


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def read_source(path: Path, lang: str) -> Iterator[list[Example]]:
    """The groups of examples in one source file."""
    slots: dict[str, list[str]] = {}
    topic: str | None = None
    group: list[Example] = []
    key = ""
    seen_topic = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@slot "):
            name, _, values = line[len("@slot "):].partition(":")
            slots[name.strip()] = [v.strip() for v in values.split("|") if v.strip()]
            continue
        if line.startswith("@topic "):
            name = line[len("@topic "):].strip()
            if name != NONE and name not in TOPICS:
                raise ValueError(f"{path.name}:{number}: unknown topic {name!r}")
            topic = None if name == NONE else name
            seen_topic = True
            if group:
                yield group
            group = []
            continue
        if not seen_topic:
            raise ValueError(f"{path.name}:{number}: a message before any @topic header")
        variant = line.startswith("+ ")
        text = line[2:].strip() if variant else line
        if not variant:
            if group:
                yield group
            key = hashlib.sha256(f"{lang}\x1f{topic}\x1f{text}".encode()).hexdigest()[:12]
            group = []
        elif not group:
            raise ValueError(f"{path.name}:{number}: a variant needs a line before it")
        if _SLOT.search(text):
            rng = random.Random(_seed(lang, text))
            texts = _expand(text, slots, rng)
        else:
            texts = [text]
        group.extend(Example(t, topic, lang, key) for t in texts)
    if group:
        yield group


def _bucket(group: str) -> int:
    return int(hashlib.sha256(f"split\x1f{group}".encode()).hexdigest(), 16) % 100


def is_heldout(group: str) -> bool:
    return _bucket(group) < HELDOUT_PERCENT


def is_calibration(group: str) -> bool:
    return HELDOUT_PERCENT <= _bucket(group) < HELDOUT_PERCENT + CALIBRATION_PERCENT


def build(
    sources: Path = SOURCES_DIR,
) -> tuple[list[Example], list[Example], list[Example]]:
    """``(train, calibration, heldout)`` from the source files, deduplicated, in a stable order."""
    train: list[Example] = []
    calibration: list[Example] = []
    heldout: list[Example] = []
    seen: set[str] = set()
    for lang in LANGUAGES:
        path = sources / f"{lang}.txt"
        for group in read_source(path, lang):
            key = group[0].group
            target = heldout if is_heldout(key) else calibration if is_calibration(key) else train
            for example in group:
                key = example.text.casefold()
                if key in seen:
                    continue
                seen.add(key)
                target.append(example)
    return train, calibration, heldout


def write(examples: list[Example], path: Path) -> None:
    path.write_text("".join(e.to_json() + "\n" for e in examples), encoding="utf-8")


def load(path: Path) -> list[Example]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            out.append(Example(r["text"], r.get("topic"), r["lang"], r.get("group", "")))
    return out


def build_files() -> tuple[list[Example], list[Example], list[Example]]:
    train, calibration, heldout = build()
    write(train, TRAIN_FILE)
    write(calibration, CALIBRATION_FILE)
    write(heldout, HELDOUT_FILE)
    return train, calibration, heldout
