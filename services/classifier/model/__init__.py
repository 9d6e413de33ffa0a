"""The topic model: which of the ten topics a customer message is about, if any.

A learned, multilingual linear model (TF-IDF over character and word n-grams, multinomial
logistic regression with a no-topic class, temperature-calibrated probabilities). The trained
artifact is committed beside this file (``artifact/topic_model.json`` and ``topic_model.npz``:
plain JSON and numpy arrays, no pickle) and is rebuilt with ``python -m services.classifier.train``.
Inference needs numpy only.

    model = load_model()
    [p] = model.predict(["Wo bleibt meine Bestellung #1042?"])
    p.topic, p.probability, p.best_topic      # 'order_status', 0.98, 'order_status'
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.classifier.model.features import message_features, normalize, word_features, words
from services.classifier.model.lexicon import Lexicon
from shared.rules import MESSAGE_TOPICS

#: The labels the model is trained on: the product's ten topics, one definition.
TOPICS: tuple[str, ...] = tuple(MESSAGE_TOPICS)
DEFAULT_THRESHOLD = 0.90
ARTIFACT_DIR = Path(__file__).resolve().parent / "artifact"
ARTIFACT_NAME = "topic_model"
FORMAT = 1
_WORD_CACHE_LIMIT = 200_000

__all__ = [
    "ARTIFACT_DIR",
    "DEFAULT_THRESHOLD",
    "TOPICS",
    "Prediction",
    "TopicModel",
    "Vectorizer",
    "artifact_paths",
    "load_model",
]


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer for one message.

    ``best_topic`` is the most probable class (``None`` when that is "no topic") and
    ``probability`` is that class's probability. ``topic`` is ``best_topic`` when that is a topic
    and ``probability >= threshold``, else ``None``: only ``topic`` is meant to be attached.
    """

    topic: str | None
    probability: float
    best_topic: str | None


class Vectorizer:
    """Texts to L2-normalised TF-IDF rows (sublinear term frequency), as sparse triplets."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.vocabulary = {f: i for i, f in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.n_features = len(self.vocabulary)
        self._cache: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        vocab, cache = self.vocabulary, self._cache
        normalized = normalize(text)
        ws = words(normalized)
        ids: list[int] = []
        for w in ws:
            known = cache.get(w)
            if known is None:
                known = [i for i in map(vocab.get, word_features(w)) if i is not None]
                if len(cache) < _WORD_CACHE_LIMIT:
                    cache[w] = known
            ids.extend(known)
        extra = message_features(text, normalized, ws, self.lexicon)
        ids.extend(i for i in map(vocab.get, extra) if i is not None)
        return ids

    def transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, columns, values)`` of the TF-IDF matrix, sorted by row then column."""
        flat: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for k, text in enumerate(texts):
            ids = self._ids(text)
            flat.extend(ids)
            lengths[k] = len(ids)
        n_features = max(self.n_features, 1)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        keys, counts = np.unique(rows * n_features + np.asarray(flat, dtype=np.int64),
                                 return_counts=True)
        rows, cols = np.divmod(keys, n_features)
        values = (1.0 + np.log(counts)) * self.idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        values /= norms[rows]
        return rows, cols, values


class TopicModel:
    """A trained topic model. Build it with :func:`load_model`."""

    def __init__(
        self,
        *,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        lexicon: Lexicon,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: Sequence[str | None],
        temperature: float,
        version: str,
        threshold: float = DEFAULT_THRESHOLD,
        meta: dict | None = None,
    ) -> None:
        if coef.shape != (len(vocabulary), len(classes)) or intercept.shape != (len(classes),):
            raise ValueError("artifact arrays do not match its vocabulary and classes")
        self.vectorizer = Vectorizer(vocabulary, idf, lexicon)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.classes: tuple[str | None, ...] = tuple(classes)
        self.topics: tuple[str, ...] = tuple(c for c in self.classes if c is not None)
        self.temperature = float(temperature)
        self.version = version
        self.threshold = _check_threshold(threshold)
        self.meta = meta or {}

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Uncalibrated class scores (logits), one row per text."""
        rows, cols, values = self.vectorizer.transform(texts)
        scores = np.tile(self.intercept, (len(texts), 1))
        if len(rows):
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            sums = np.add.reduceat(self.coef[cols] * values[:, None], starts, axis=0)
            scores[rows[starts]] += sums
        return scores

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of ``classes``."""
        logits = self.scores(texts) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def predict(self, texts: Sequence[str], threshold: float | None = None) -> list[Prediction]:
        """One :class:`Prediction` per text (batched: pass many texts at once)."""
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts, not one string")
        limit = self.threshold if threshold is None else _check_threshold(threshold)
        if not len(texts):
            return []
        proba = self.predict_proba([t or "" for t in texts])
        best = proba.argmax(axis=1)
        out = []
        for k, p in zip(best.tolist(), proba[np.arange(len(best)), best].tolist(), strict=True):
            label = self.classes[k]
            probability = min(max(p, 0.0), 1.0)
            topic = label if label is not None and probability >= limit else None
            out.append(Prediction(topic=topic, probability=probability, best_topic=label))
        return out


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0 or math.isnan(threshold):
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return threshold


def artifact_paths(path: Path | None = None) -> tuple[Path, Path]:
    """The ``(json, npz)`` files of an artifact given its folder or either file."""
    path = Path(path) if path is not None else ARTIFACT_DIR
    if path.is_dir():
        path = path / f"{ARTIFACT_NAME}.json"
    return path.with_suffix(".json"), path.with_suffix(".npz")


def load_model(path: Path | None = None, threshold: float = DEFAULT_THRESHOLD) -> TopicModel:
    """The committed model (or the artifact at ``path``: its folder or one of its two files)."""
    meta_path, arrays_path = artifact_paths(path)
    meta_bytes, arrays_bytes = meta_path.read_bytes(), arrays_path.read_bytes()
    meta = json.loads(meta_bytes)
    if meta.get("format") != FORMAT:
        raise ValueError(f"unsupported topic model format {meta.get('format')!r}")
    digest = hashlib.sha256(meta_bytes + b"\0" + arrays_bytes).hexdigest()[:12]
    with np.load(arrays_path, allow_pickle=False) as arrays:
        coef, intercept, idf = arrays["coef"], arrays["intercept"], arrays["idf"]
    vocabulary = meta.pop("vocabulary")
    return TopicModel(
        vocabulary=vocabulary,
        idf=idf,
        lexicon=Lexicon(meta.pop("lexicon")),
        coef=coef,
        intercept=intercept,
        classes=meta["classes"],
        temperature=meta["temperature"],
        version=f"{meta['name']}-{digest}",
        threshold=threshold,
        meta=meta,
    )
