"""Evaluate the topic model: ``python -m services.classifier.evaluate [--split heldout|probe|all]``.

Prints, for the held-out split (never used in training) and for the probe set (hand-written
after the model was designed, in a messier style, never tuned on), per language and per topic:

* precision among tagged: of the messages that got a tag (p >= threshold), how many got the
  right one;
* topical tagged: the share of messages that have a topic and got a tag (right or wrong);
* no-topic tagged: the share of messages without a topic that wrongly got one;

then a confusion table (rows: true topic, columns: the tag given, ``-`` for none) and a
calibration table (tags grouped by probability). Exits 1 when the held-out figures miss the
targets (precision >= 0.95, topical tagged >= 0.70, no-topic tagged <= 0.05, every language
with topical tagged >= 0.50).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.classifier.model import DEFAULT_THRESHOLD, TopicModel, load_model
from services.classifier.model.dataset import HELDOUT_FILE, LANGUAGES, PROBE_FILE, Example, load

TARGET_PRECISION = 0.95
TARGET_COVERAGE = 0.70
TARGET_FALSE_TAGS = 0.05
TARGET_LANGUAGE_COVERAGE = 0.50

_SHORT = {
    None: "-",
    "checkout": "chk",
    "order_editing": "edit",
    "order_status": "stat",
    "pricing_discounts": "price",
    "product_details": "detl",
    "product_interest": "intr",
    "returns": "ret",
    "shipping": "ship",
    "store_info": "store",
    "wholesale": "whole",
}


@dataclass(frozen=True)
class Scores:
    messages: int
    topical: int
    no_topic: int
    tagged: int
    tagged_right: int
    topical_tagged: int
    no_topic_tagged: int

    @property
    def precision(self) -> float:
        return self.tagged_right / self.tagged if self.tagged else float("nan")

    @property
    def coverage(self) -> float:
        return self.topical_tagged / self.topical if self.topical else float("nan")

    @property
    def false_tags(self) -> float:
        return self.no_topic_tagged / self.no_topic if self.no_topic else float("nan")


def score(truth: Sequence[str | None], tags: Sequence[str | None]) -> Scores:
    pairs = list(zip(truth, tags, strict=True))
    return Scores(
        messages=len(pairs),
        topical=sum(t is not None for t, _ in pairs),
        no_topic=sum(t is None for t, _ in pairs),
        tagged=sum(g is not None for _, g in pairs),
        tagged_right=sum(g is not None and g == t for t, g in pairs),
        topical_tagged=sum(t is not None and g is not None for t, g in pairs),
        no_topic_tagged=sum(t is None and g is not None for t, g in pairs),
    )


@dataclass
class Report:
    examples: list[Example]
    tags: list[str | None]
    probabilities: list[float]

    def overall(self) -> Scores:
        return score([e.topic for e in self.examples], self.tags)

    def by(self, key) -> dict[str, Scores]:
        groups: dict[str, tuple[list, list]] = {}
        for e, g in zip(self.examples, self.tags, strict=True):
            k = key(e)
            if k is None:
                continue
            truth, tags = groups.setdefault(k, ([], []))
            truth.append(e.topic)
            tags.append(g)
        return {k: score(*v) for k, v in groups.items()}

    def meets_targets(self) -> list[str]:
        misses = []
        s = self.overall()
        if not s.precision >= TARGET_PRECISION:
            misses.append(f"precision {s.precision:.3f} < {TARGET_PRECISION}")
        if not s.coverage >= TARGET_COVERAGE:
            misses.append(f"topical tagged {s.coverage:.3f} < {TARGET_COVERAGE}")
        if not s.false_tags <= TARGET_FALSE_TAGS:
            misses.append(f"no-topic tagged {s.false_tags:.3f} > {TARGET_FALSE_TAGS}")
        for lang, ls in self.by(lambda e: e.lang).items():
            if not ls.coverage >= TARGET_LANGUAGE_COVERAGE:
                misses.append(f"{lang}: topical tagged {ls.coverage:.3f}")
        return misses


def evaluate(model: TopicModel, examples: list[Example], threshold: float) -> Report:
    predictions = model.predict([e.text for e in examples], threshold=threshold)
    return Report(examples, [p.topic for p in predictions], [p.probability for p in predictions])


def _pct(x: float) -> str:
    return "   -  " if x != x else f"{100 * x:5.1f}%"


def _row(name: str, s: Scores) -> str:
    return (f"  {name:<18} {s.messages:>5} {s.tagged:>6}  {_pct(s.precision)}   "
            f"{_pct(s.coverage)}    {_pct(s.false_tags)}")


def format_report(title: str, report: Report, threshold: float) -> str:
    lines = [f"== {title}: {len(report.examples)} messages, tag when p >= {threshold:.2f} =="]
    header = "  {:<18} {:>5} {:>6}  {:>7}  {:>8}  {:>9}".format(
        "", "msgs", "tagged", "prec.", "topical", "no-topic")
    lines += [header, "  " + "-" * (len(header) - 2)]
    lines.append(_row("ALL", report.overall()))
    by_lang = report.by(lambda e: e.lang)
    for lang in [*LANGUAGES, *sorted(set(by_lang) - set(LANGUAGES))]:
        if lang in by_lang:
            lines.append(_row(f"lang {lang}", by_lang[lang]))
    by_topic = report.by(lambda e: e.topic or "(no topic)")
    # Per topic: precision counts tags *given* as that topic; coverage and false tags by truth.
    given = report.by(lambda e: None)  # placeholder to keep the shape simple
    del given
    for topic in sorted(by_topic, key=lambda t: (t == "(no topic)", t)):
        s = by_topic[topic]
        tagged_as = [(e.topic, g) for e, g in zip(report.examples, report.tags, strict=True)
                     if g == topic]
        right = sum(t == g for t, g in tagged_as)
        precision = right / len(tagged_as) if tagged_as else float("nan")
        lines.append(
            f"  {topic:<18} {s.messages:>5} {len(tagged_as):>6}  {_pct(precision)}   "
            f"{_pct(s.coverage)}    {_pct(s.false_tags)}"
        )
    lines.append("  (per topic: 'tagged' and 'prec.' count the tags given as that topic)")
    lines.append("")
    lines.append("  confusion (rows: true topic; columns: tag given, '-' for no tag)")
    keys = list(_SHORT)
    lines.append("  {:<18}".format("") + "".join(f"{_SHORT[k]:>6}" for k in keys))
    for t in sorted(keys, key=lambda k: (k is None, k or "")):
        counts = [sum(1 for e, g in zip(report.examples, report.tags, strict=True)
                      if e.topic == t and g == k) for k in keys]
        if sum(counts):
            lines.append(f"  {t or '(no topic)':<18}" + "".join(f"{c:>6}" for c in counts))
    lines.append("")
    lines.append("  tags by probability (is p honest? the share right should be about p or more)")
    bins = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 0.97), (0.97, 1.01)]
    for lo, hi in bins:
        members = [(e.topic, g) for e, g, p in zip(report.examples, report.tags,
                                                     report.probabilities, strict=True)
                   if lo <= p < hi and g is not None]
        if members:
            right = sum(t == g for t, g in members)
            lines.append(f"  p in [{lo:.2f}, {min(hi, 1):.2f}): {len(members):>5} tags, "
                         f"{_pct(right / len(members))} right")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("heldout", "probe", "all"), default="all")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--model", type=Path, default=None, help="artifact folder or file")
    parser.add_argument("--errors", action="store_true", help="list the wrong tags")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    print(f"model {model.version}")
    status = 0
    splits = [("heldout", HELDOUT_FILE), ("probe", PROBE_FILE)]
    for name, path in splits:
        if args.split not in (name, "all") or not path.exists():
            continue
        report = evaluate(model, load(path), args.threshold)
        print(format_report(f"{name} ({path.name})", report, args.threshold))
        if args.errors:
            for e, g, p in zip(report.examples, report.tags, report.probabilities, strict=True):
                if g is not None and g != e.topic:
                    print(f"  WRONG {e.lang} {e.topic} -> {g} ({p:.2f}): {e.text}")
        if name == "heldout":
            misses = report.meets_targets()
            print("  targets: " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
            status = 1 if misses else status
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
