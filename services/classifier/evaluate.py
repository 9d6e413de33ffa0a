"""Evaluate the topic model: ``python -m services.classifier.evaluate [--split NAME|all]``.

Prints, for the held-out split (never used in training), the probe set (hand-written after the
model was designed, in a chattier style, never trained on) and the unseen set (written apart from
the training data in the way customers type, in nine languages plus a few the model does not
know; never used for training, calibration or choosing settings), per language and per topic:

* precision among tagged: of the messages that got a tag (p >= threshold), how many got the
  right one;
* topical tagged: the share of messages that have a topic and got a tag (right or wrong);
* no-topic tagged: the share of messages without a topic that wrongly got one;

then a confusion table (rows: true topic, columns: the tag given, ``-`` for none) and a
reliability table (the model's best topic grouped by its probability, with the share that is
right: an honest model is right in at least about that share). Exits 1 when the held-out or the
unseen figures miss their targets (see ``HELDOUT_TARGETS`` and ``UNSEEN_TARGETS``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.classifier.model import DEFAULT_THRESHOLD, TopicModel, load_model
from services.classifier.model.dataset import (
    HELDOUT_FILE,
    LANGUAGES,
    PROBE_FILE,
    UNSEEN_FILE,
    Example,
    load,
)


@dataclass(frozen=True)
class Targets:
    precision: float  # among tagged, all languages the model knows
    coverage: float  # topical tagged, all languages the model knows
    false_tags: float  # no-topic tagged
    language_precision: float  # among tagged, in each language the model knows
    language_coverage: float  # topical tagged in each of ``coverage_languages``
    coverage_languages: tuple[str, ...]
    unknown_precision: float  # in a language the model does not know: right when it tags...
    unknown_tagged: float  # ...or tags at most this share


# Held-out: topical tagged was 0.70 before the label audit and the calibration on data the model
# is not trained on (typo'd copies included); the calibrated model abstains more and is right more.
HELDOUT_TARGETS = Targets(0.95, 0.65, 0.05, 0.0, 0.50, LANGUAGES[:6], 0.0, 1.0)
# The unseen set's targets (issue 17): topical tagged >= 0.60 in each of the six first languages.
UNSEEN_TARGETS = Targets(0.95, 0.0, 0.03, 0.90, 0.60, LANGUAGES[:6], 0.90, 0.25)
TARGET_PRECISION = HELDOUT_TARGETS.precision
TARGET_COVERAGE = HELDOUT_TARGETS.coverage
TARGET_FALSE_TAGS = HELDOUT_TARGETS.false_tags
TARGET_LANGUAGE_COVERAGE = HELDOUT_TARGETS.language_coverage
RELIABILITY_BINS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.98),
                    (0.98, 0.99), (0.99, 1.01))

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
    best: list[str | None]

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

    def known(self) -> Report:
        """The messages in languages the model was trained on."""
        keep = [i for i, e in enumerate(self.examples) if e.lang in LANGUAGES]
        return Report([self.examples[i] for i in keep], [self.tags[i] for i in keep],
                      [self.probabilities[i] for i in keep], [self.best[i] for i in keep])

    def meets_targets(self, targets: Targets = HELDOUT_TARGETS) -> list[str]:
        misses = []
        known = self.known()
        s = known.overall()
        if not s.precision >= targets.precision:
            misses.append(f"precision {s.precision:.3f} < {targets.precision}")
        if not s.coverage >= targets.coverage:
            misses.append(f"topical tagged {s.coverage:.3f} < {targets.coverage}")
        if not s.false_tags <= targets.false_tags:
            misses.append(f"no-topic tagged {s.false_tags:.3f} > {targets.false_tags}")
        for lang, ls in known.by(lambda e: e.lang).items():
            if lang in targets.coverage_languages and not ls.coverage >= targets.language_coverage:
                misses.append(f"{lang}: topical tagged {ls.coverage:.3f}")
            if ls.tagged and not ls.precision >= targets.language_precision:
                misses.append(f"{lang}: precision {ls.precision:.3f}")
        unknown = [i for i, e in enumerate(self.examples) if e.lang not in LANGUAGES]
        if unknown:
            u = score([self.examples[i].topic for i in unknown], [self.tags[i] for i in unknown])
            share = u.tagged / u.messages
            if share > targets.unknown_tagged and not u.precision >= targets.unknown_precision:
                misses.append(f"unknown languages: {share:.2f} tagged at precision "
                              f"{u.precision:.3f}")
        return misses


def evaluate(model: TopicModel, examples: list[Example], threshold: float) -> Report:
    predictions = model.predict([e.text for e in examples], threshold=threshold)
    return Report(examples, [p.topic for p in predictions], [p.probability for p in predictions],
                  [p.best_topic for p in predictions])


def reliability(report: Report) -> list[tuple[float, float, int, float, float]]:
    """``(low, high, n, mean p, share right)`` per probability bin, over the messages whose most
    probable class is a topic (right when it is their topic)."""
    out = []
    for lo, hi in RELIABILITY_BINS:
        members = [(e.topic, b, p) for e, b, p in zip(report.examples, report.best,
                                                        report.probabilities, strict=True)
                   if b is not None and lo <= p < hi]
        if members:
            right = sum(t == b for t, b, _ in members)
            mean = sum(p for *_, p in members) / len(members)
            out.append((lo, min(hi, 1.0), len(members), mean, right / len(members)))
    return out


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
    by_lang = report.by(lambda e: e.lang)
    lines.append(_row("ALL", report.known().overall()))
    for lang in LANGUAGES:
        if lang in by_lang:
            lines.append(_row(f"lang {lang}", by_lang[lang]))
    others = sorted(set(by_lang) - set(LANGUAGES))
    if others:
        lines.append("  languages the model was not trained on (not in ALL, nor below):")
        for lang in others:
            lines.append(_row(f"lang {lang}", by_lang[lang]))
        report = report.known()
    by_topic = report.by(lambda e: e.topic or "(no topic)")
    # Per topic: precision counts tags *given* as that topic; coverage and false tags by truth.
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
    lines.append("  reliability (messages whose most probable class is a topic, by that "
                 "probability; the share right should be about the mean p or more)")
    lines.append("  {:<16} {:>6} {:>8} {:>8}".format("p", "msgs", "mean p", "right"))
    for lo, hi, n, mean, right in reliability(report):
        lines.append(f"  [{lo:.2f}, {hi:.2f}){'' if hi < 1 else ']'}".ljust(18)
                     + f" {n:>6} {_pct(mean):>8} {_pct(right):>8}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("heldout", "probe", "unseen", "all"), default="all")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--model", type=Path, default=None, help="artifact folder or file")
    parser.add_argument("--errors", action="store_true", help="list the wrong tags")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    print(f"model {model.version}")
    status = 0
    splits = [("heldout", HELDOUT_FILE), ("probe", PROBE_FILE), ("unseen", UNSEEN_FILE)]
    targets = {"heldout": HELDOUT_TARGETS, "unseen": UNSEEN_TARGETS}
    for name, path in splits:
        if args.split not in (name, "all") or not path.exists():
            continue
        report = evaluate(model, load(path), args.threshold)
        print(format_report(f"{name} ({path.name})", report, args.threshold))
        if args.errors:
            for e, g, p in zip(report.examples, report.tags, report.probabilities, strict=True):
                if g is not None and g != e.topic:
                    print(f"  WRONG {e.lang} {e.topic} -> {g} ({p:.2f}): {e.text}")
        if name in targets:
            misses = report.meets_targets(targets[name])
            print("  targets: " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
            status = 1 if misses else status
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
