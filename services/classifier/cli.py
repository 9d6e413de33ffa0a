"""Classify messages from the command line: one message per line in, one JSON object per line out.

    echo "Wo bleibt meine Bestellung?" | python -m services.classifier.cli
    {"topic": "order_status", "probability": 0.97, "best_topic": "order_status", ...}

Lines are classified in batches when the input is a pipe or a file, one at a time when typed.
An empty line gives ``{"topic": null, ...}`` so output line N always answers input line N.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from services.classifier.model import DEFAULT_THRESHOLD, TopicModel, load_model

BATCH = 256


def classify_lines(
    lines: Iterable[str],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    model: TopicModel | None = None,
    batch_size: int = BATCH,
) -> Iterator[dict]:
    """One result per line (trailing newline removed), in order, classified in batches."""
    model = model or load_model()
    it = iter(lines)
    while batch := [line.rstrip("\r\n") for line in islice(it, max(batch_size, 1))]:
        for p in model.predict(batch, threshold=threshold):
            yield {
                "topic": p.topic,
                "probability": round(p.probability, 6),
                "best_topic": p.best_topic,
                "model_version": model.version,
            }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Classify customer messages (one per line on stdin) into topics; "
        "prints one JSON object per line."
    )
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"tag only at this probability or more (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--model", type=Path, default=None,
                        help="model artifact (folder or file); default: the committed model")
    args = parser.parse_args(argv)
    if not 0.0 < args.threshold <= 1.0:
        parser.error("--threshold must be in (0, 1]")
    model = load_model(args.model)
    batch = 1 if sys.stdin.isatty() else BATCH
    out = sys.stdout
    for result in classify_lines(sys.stdin, args.threshold, model=model, batch_size=batch):
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        if batch == 1:
            out.flush()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
