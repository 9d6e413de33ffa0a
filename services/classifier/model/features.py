"""Text features of the topic model, shared by training and inference.

A message becomes a bag of string features:

* character n-grams (2 to 5) inside each word, the word padded with a space on both sides;
* word unigrams and bigrams, prefixed with ``~``;
* multilingual shop concepts from :mod:`lexicon`, prefixed with ``@`` (``@refund`` for
  "refund", "Rückerstattung", "remboursement", "återbetalning", "hoàn tiền", "reembolso");
* a few shape features, prefixed with ``#`` (message length, question mark, emoji, no letters).

Before that the text is normalised so that the ways people type on a phone meet: lower case,
accents and diacritics removed (``giao hàng`` and ``giao hang``, ``försändelse`` and
``forsandelse`` give the same features), digits folded to ``0`` (order numbers all look alike),
web and mail addresses replaced by a placeholder, letters repeated three times or more cut to two.

Training and inference both go through :func:`word_features` and :func:`message_features`, so
the features a model was trained on are exactly the features it sees at run time.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise

from services.classifier.model.lexicon import Lexicon

CHAR_NGRAMS = (2, 5)
WORD_PREFIX = "~"
SHAPE_PREFIX = "#"
CONCEPT_PREFIX = "@"

_LETTERS = str.maketrans(
    {
        "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae",
        "œ": "oe", "Œ": "oe", "ß": "ss", "ẞ": "ss", "ł": "l", "Ł": "l", "\u0131": "i",
        "þ": "th", "\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'",
    }
)
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|de|fr|se|es|vn|io|shop)(?:/\S*)?\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_DIGITS = re.compile(r"\d+")
_REPEATS = re.compile(r"(\w)\1{2,}")
_WORD = re.compile(r"[^\W_]+")
_EMOJI = re.compile(
    "[\u2600-\u27bf\U0001f000-\U0001faff\u2b50\u2b55\u2764\u263a\u2639\u270c\u2705\u274c]"
)
# A discount code as people paste it: SUMMER20, WELCOME10, FREESHIP (capitals, maybe digits).
_CODE = re.compile(
    r"(?<!\w)(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*\d)[A-Z0-9]{4,}(?!\w)|(?<!\w)[A-Z]{5,}(?!\w)"
)
_LENGTH_BUCKETS = (0, 1, 2, 3, 4, 6, 10, 20, 40)


def normalize(text: str) -> str:
    """Lower-cased text without diacritics, digits as ``0``, addresses as placeholders."""
    text = text.translate(_LETTERS)
    text = unicodedata.normalize("NFKD", text)
    text = _COMBINING.sub("", text).lower()
    text = _EMAIL.sub(" xemailx ", text)
    text = _URL.sub(" xurlx ", text)
    text = _DIGITS.sub("0", text)
    return _REPEATS.sub(r"\1\1", text)


def words(normalized: str) -> list[str]:
    """The words of a normalised text (letters and digits; punctuation and ``_`` split)."""
    return _WORD.findall(normalized)


def word_features(word: str) -> list[str]:
    """The features a single word contributes, whatever its neighbours: char n-grams, unigram."""
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    out = [
        padded[i : i + n]
        for n in range(low, high + 1)
        for i in range(len(padded) - n + 1)
    ]
    out.append(WORD_PREFIX + word)
    return out


def _length_bucket(n: int) -> int:
    bucket = 0
    for i, edge in enumerate(_LENGTH_BUCKETS):
        if n >= edge:
            bucket = i
    return bucket


def message_features(text: str, normalized: str, ws: list[str], lexicon: Lexicon) -> list[str]:
    """The features of the message as a whole: word bigrams, concepts, shape."""
    out = [f"{WORD_PREFIX}{a} {b}" for a, b in pairwise(ws)]
    out.extend(CONCEPT_PREFIX + c for c in lexicon.find(normalized))
    out.append(f"{SHAPE_PREFIX}len{_length_bucket(len(ws))}")
    if "?" in text or "¿" in text:
        out.append(f"{SHAPE_PREFIX}q")
    if _CODE.search(text):
        out.append(f"{SHAPE_PREFIX}code")
    if _EMOJI.search(text):
        out.append(f"{SHAPE_PREFIX}emoji")
    if not any(c.isalpha() for c in text):
        out.append(f"{SHAPE_PREFIX}noalpha")
    return out


def analyze(text: str, lexicon: Lexicon) -> list[str]:
    """All features of a message, with repetitions (the reference path, used in training)."""
    normalized = normalize(text)
    ws = words(normalized)
    out: list[str] = []
    for w in ws:
        out.extend(word_features(w))
    out.extend(message_features(text, normalized, ws, lexicon))
    return out
