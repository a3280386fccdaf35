"""Answer parsing and scores.

Two accuracies side by side: the paper's (the gold label is contained in the answer) and a
strict one (the first label the answer names is the gold label); containment is fooled by
answers such as "not negative" or by answers listing every option.
"""

from __future__ import annotations

import re

INVALID = "invalid"


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def parse_label(answer: str, labels: tuple[str, ...]) -> str | None:
    """The label that appears first in the answer (whole words, case and punctuation ignored)."""
    text = f" {normalize(answer)} "
    found = [(text.find(f" {label} "), label) for label in labels if f" {label} " in text]
    return min(found)[1] if found else None


def contains(answer: str, gold: str) -> bool:
    return f" {normalize(gold)} " in f" {normalize(answer)} "


def parsed_labels(answers: list[str], labels: tuple[str, ...]) -> list[str]:
    return [parse_label(a, labels) or INVALID for a in answers]


def score(answers: list[str], golds: list[str], labels: tuple[str, ...]) -> dict:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    if not golds:
        raise ValueError("no examples to score")
    parsed = parsed_labels(answers, labels)
    n = len(golds)
    precision, recall, f1, support = precision_recall_fscore_support(
        golds, parsed, labels=list(labels), zero_division=0)
    return {
        "n": n,
        "accuracy": round(sum(contains(a, g) for a, g in zip(answers, golds)) / n, 4),
        "strict_accuracy": round(sum(p == g for p, g in zip(parsed, golds)) / n, 4),
        "f1_weighted": round(float(f1_score(golds, parsed, labels=list(labels), average="weighted", zero_division=0)), 4),
        "f1_macro": round(float(f1_score(golds, parsed, labels=list(labels), average="macro", zero_division=0)), 4),
        "invalid_rate": round(parsed.count(INVALID) / n, 4),
        "per_class": {
            label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                    "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
    }


def confusion_rows(golds: list[str], parsed: list[str]) -> list[dict]:
    """One {actual, predicted} row per example: the data DVC's confusion template draws."""
    return [{"actual": g, "predicted": p} for g, p in zip(golds, parsed)]
