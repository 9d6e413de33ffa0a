"""Train the topic model from the data in the repository: ``python -m services.classifier.train``.

1. Rebuild ``data/train.jsonl``, ``data/calibration.jsonl`` and ``data/heldout.jsonl`` from
   ``data/sources/`` (deterministic, split by group). The model is fitted on the train file only.
2. Add typo'd copies of the training messages (seeded), fit the TF-IDF vocabulary on the
   original training messages (features seen in at least ``MIN_DF`` of them).
3. Fit the multinomial logistic regression on the training set.
4. Calibrate on data the model did not train on: the calibration split, with a typo'd copy of
   each message (customers type that way); one temperature is fitted to the model's scores on
   it by maximum likelihood.
5. Write the artifact (``model/artifact/topic_model.json`` + ``.npz``), byte for byte the same on
   every run.

Needs scikit-learn (training only; the service needs numpy only). Single-threaded on purpose:
the result must not depend on the machine's thread count.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from services.classifier.model import (  # noqa: E402
    ARTIFACT_DIR,
    ARTIFACT_NAME,
    DEFAULT_THRESHOLD,
    FORMAT,
    TOPICS,
    Vectorizer,
    artifact_paths,
    dataset,
    load_model,
)
from services.classifier.model.dataset import Example  # noqa: E402
from services.classifier.model.features import CHAR_NGRAMS, analyze  # noqa: E402
from services.classifier.model.lexicon import CONCEPTS, Lexicon  # noqa: E402

SEED = 20240611
MIN_DF = 2
C = 8.0
TYPO_COPIES = 1
# Concept features (one per message and concept) would drown among hundreds of n-grams under
# the L2 norm; their idf is multiplied by this, so that they count.
CONCEPT_WEIGHT = 8.0
# Weight of no-topic messages in the loss: there are many of them and they are easy.
NONE_WEIGHT = 0.25
CLASSES: tuple[str | None, ...] = (None, *TOPICS)


def typo(text: str, rng: random.Random) -> str:
    """The text as typed in a hurry: one or two dropped, doubled or swapped letters."""
    chars = list(text)
    for _ in range(rng.choice((1, 1, 2))):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 4:
            break
        i = rng.choice(letters)
        op = rng.randrange(4)
        if op == 0:
            del chars[i]
        elif op == 1:
            chars.insert(i, chars[i])
        elif op == 2 and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars[i] = chars[i].swapcase() if rng.random() < 0.5 else chars[i]
    out = "".join(chars)
    if rng.random() < 0.3:
        out = out.rstrip("?!.")
    return out


def augment(examples: Sequence[Example], seed: int = SEED) -> list[Example]:
    rng = random.Random(seed)
    out = list(examples)
    for e in examples:
        for _ in range(TYPO_COPIES):
            t = typo(e.text, rng)
            if t != e.text:
                out.append(Example(t, e.topic, e.lang, e.group))
    return out


def fit_vocabulary(
    texts: Sequence[str], lexicon: Lexicon, min_df: int = MIN_DF
) -> tuple[list[str], np.ndarray]:
    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(analyze(text, lexicon)))
    vocabulary = sorted(f for f, n in df.items() if n >= min_df)
    n = len(texts)
    idf = np.array(
        [(np.log((1 + n) / (1 + df[f])) + 1.0) * (CONCEPT_WEIGHT if f[0] == "@" else 1.0)
         for f in vocabulary],
        dtype=np.float32,
    )
    idf = idf.astype(np.float64)  # what the artifact keeps
    return vocabulary, idf


def matrix(vectorizer: Vectorizer, texts: Sequence[str]):
    from scipy.sparse import csr_matrix

    rows, cols, values = vectorizer.transform(texts)
    return csr_matrix((values, (rows, cols)), shape=(len(texts), vectorizer.n_features))


def fit_linear(x, y: np.ndarray, c: float = C):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=3000, tol=1e-6)
    model.fit(x, y, sample_weight=np.where(y == 0, NONE_WEIGHT, 1.0))
    return model


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                             options={"xatol": 1e-6})
    return float(np.exp(result.x))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed timestamps, so the same arrays give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(info, data.getvalue())
    return buffer.getvalue()


def tag_report(proba: np.ndarray, y: np.ndarray, threshold: float) -> str:
    best = proba.argmax(axis=1)
    p = proba[np.arange(len(y)), best]
    tagged = (best != 0) & (p >= threshold)
    topical = y != 0
    precision = (best[tagged] == y[tagged]).mean() if tagged.any() else float("nan")
    return (
        f"precision among tagged {precision:.3f}, topical tagged {tagged[topical].mean():.3f}, "
        f"no-topic tagged {tagged[~topical].mean():.3f}"
    )


def train(out_dir: Path = ARTIFACT_DIR, *, build: bool = True, verbose: bool = True) -> Path:
    import sklearn

    started = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    if build:
        examples, calibration, heldout = dataset.build_files()
        say(f"data: {len(examples)} training, {len(calibration)} calibration and {len(heldout)} "
            "held-out messages written")
    else:
        examples = dataset.load(dataset.TRAIN_FILE)
        calibration = dataset.load(dataset.CALIBRATION_FILE)
    lexicon = Lexicon(CONCEPTS)
    vocabulary, idf = fit_vocabulary([e.text for e in examples], lexicon)
    vectorizer = Vectorizer(vocabulary, idf, lexicon)
    rows = augment(examples)
    x = matrix(vectorizer, [e.text for e in rows])
    y = np.array([CLASSES.index(e.topic) for e in rows])
    say(f"features: {len(vocabulary)}; training rows with typo copies: {len(rows)}")

    final = fit_linear(x, y)
    calibration_rows = augment(calibration, seed=SEED + 1)
    logits = final.decision_function(matrix(vectorizer, [e.text for e in calibration_rows]))
    y_cal = np.array([CLASSES.index(e.topic) for e in calibration_rows])
    temperature = fit_temperature(logits, y_cal)
    z = logits / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    proba = z / z.sum(axis=1, keepdims=True)
    say(f"calibration: temperature {temperature:.4f} on {len(calibration_rows)} calibration "
        f"messages (with typo copies); there at p >= {DEFAULT_THRESHOLD}: "
        + tag_report(proba, y_cal, DEFAULT_THRESHOLD))

    coef = final.coef_.T.astype(np.float32)
    intercept = final.intercept_.astype(np.float32)
    counts: dict[str, dict[str, int]] = {}
    for e in examples:
        counts.setdefault(e.lang, {}).setdefault(e.topic or "none", 0)
        counts[e.lang][e.topic or "none"] += 1
    meta = {
        "format": FORMAT,
        "name": "topic-model",
        "classes": list(CLASSES),
        "temperature": round(temperature, 6),
        "threshold": DEFAULT_THRESHOLD,
        "features": {
            "char_ngrams": list(CHAR_NGRAMS),
            "word_ngrams": [1, 2],
            "tf": "1+log",
            "norm": "l2",
            "min_df": MIN_DF,
            "concept_weight": CONCEPT_WEIGHT,
        },
        "training": {
            "model": "multinomial logistic regression (lbfgs)",
            "C": C,
            "typo_copies": TYPO_COPIES,
            "none_weight": NONE_WEIGHT,
            "calibration": "temperature, fitted on the calibration split (not trained on) "
                           "and its typo'd copies",
            "seed": SEED,
            "messages": {lang: dict(sorted(c.items())) for lang, c in sorted(counts.items())},
            "scikit_learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "lexicon": lexicon.concepts,
        "vocabulary": vocabulary,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path, arrays_path = artifact_paths(out_dir / f"{ARTIFACT_NAME}.json")
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, separators=(",", ":")) + "\n",
                         encoding="utf-8")
    arrays_path.write_bytes(_npz_bytes({"coef": coef, "intercept": intercept,
                                        "idf": idf.astype(np.float32)}))
    size = meta_path.stat().st_size + arrays_path.stat().st_size
    version = load_model(out_dir).version
    say(f"model {version}: {size / 1e6:.2f} MB, trained in {time.perf_counter() - started:.1f} s")
    return meta_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ARTIFACT_DIR, help="artifact folder")
    parser.add_argument("--no-build", action="store_true",
                        help="use the existing train.jsonl instead of rebuilding it")
    args = parser.parse_args(argv)
    train(args.out, build=not args.no_build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
