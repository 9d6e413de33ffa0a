"""Classification throughput on one core: ``python -m benchmarks.classify``.

Classifies the held-out messages in batches of 1, 64 and 512 and prints messages per second
(classification alone: features, linear model, calibrated probabilities). Numeric libraries
are held to one thread and the process to one CPU, so the figure is per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from services.classifier.model import load_model  # noqa: E402
from services.classifier.model.dataset import HELDOUT_FILE, load  # noqa: E402

BATCH_SIZES = (1, 64, 512)
TARGET = 2000.0


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned"


def throughput(model, texts: Sequence[str], batch: int, seconds: float) -> float:
    """Messages per second, best of repeated passes over the texts (fresh feature cache)."""
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        model.vectorizer._cache.clear()  # measure cold words too, as in a long-running service
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            model.predict(texts[i : i + batch])
        best = max(best, len(texts) / (time.perf_counter() - start))
        if time.perf_counter() >= deadline:
            return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per batch size")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    started = time.perf_counter()
    model = load_model()
    load_seconds = time.perf_counter() - started
    texts = [e.text for e in load(HELDOUT_FILE)]
    print(f"topic model {model.version}: loaded in {load_seconds * 1000:.0f} ms; "
          f"{len(texts)} held-out messages; one thread, {pinned}")
    worst = float("inf")
    for batch in BATCH_SIZES:
        rate = throughput(model, texts, batch, args.seconds)
        worst = min(worst, rate) if batch > 1 else worst
        print(f"  batch {batch:>4}: {rate:>8,.0f} messages/s")
    print(f"  target >= {TARGET:,.0f} messages/s batched: "
          + ("met" if worst >= TARGET else "MISSED"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
