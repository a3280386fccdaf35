"""Answer parsing and scores, one scorer per kind of answer (`finlora.answers` calls them).

Two accuracies side by side: the paper's (the gold answer is contained in the answer) and a
strict one (the parsed answer is the gold one); containment is fooled by answers such as
"not negative" or by answers listing every option. FiNER is scored per entity, XBRL values
as numbers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

INVALID = "invalid"
SCALES = {"thousand": Decimal(10) ** 3, "million": Decimal(10) ** 6, "billion": Decimal(10) ** 9,
          "trillion": Decimal(10) ** 12}
NUMBER = re.compile(r"(\()?\s*(-)?\s*[$€£]?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)\s*(thousand|million|billion|trillion)?")


@dataclass
class Scored:
    metrics: dict
    parsed: list  # per record: the parsed answer (a list of tags for FiNER); INVALID where none
    golds: list  # per record: what its answer is scored against (an NWGI level's label; FiNER's tags)
    correct: list  # per record: whether the answer is strictly right (FiNER: a list, one per entity);
    # what strict_accuracy counts, and what `finlora compare` pairs across two runs
    confusion: list[dict] | None = None  # {actual, predicted} rows, for answers from a closed set


@dataclass(frozen=True)
class TaskScores:
    """A task's headline scores, as evaluation writes them and the report, sweep and dev loop read
    them; `f1_weighted` is None where a task has no F1 (XBRL values, numbers)."""

    accuracy: float
    strict_accuracy: float
    invalid_rate: float
    f1_weighted: float | None = None

    @classmethod
    def of(cls, metrics: dict) -> "TaskScores":
        return cls(metrics["accuracy"], metrics["strict_accuracy"], metrics["invalid_rate"], metrics.get("f1_weighted"))

    def as_dict(self) -> dict:
        """The scores `dvc metrics` compares; a missing F1 is left out, not written as null."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def cell(self) -> str:
        """Accuracy in % and weighted F1 where the task has one: "71.70 / 0.695"."""
        text = f"{100 * self.accuracy:.2f}"
        return f"{text} / {self.f1_weighted:.3f}" if self.f1_weighted is not None else text


def strict_accuracy(correct: list[bool]) -> float:
    return round(sum(correct) / len(correct), 4)


# --- one label from a closed set ---------------------------------------------------------------

def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def parse_label(answer: str, labels: tuple[str, ...]) -> str | None:
    """The label that appears first in the answer (whole words, case and punctuation ignored)."""
    text = f" {normalize(answer)} "
    found = [(text.find(f" {label} "), label) for label in labels if f" {label} " in text]
    return min(found)[1] if found else None


def contains(answer: str, gold: str) -> bool:
    return f" {normalize(gold)} " in f" {normalize(answer)} "


def score_labels(answers: list[str], golds: list[str], labels: tuple[str, ...]) -> Scored:
    parsed = [parse_label(a, labels) or INVALID for a in answers]
    contained = [contains(a, g) for a, g in zip(answers, golds)]
    return _scored_by_class(golds, parsed, contained, list(labels))


def _scored_by_class(golds: list[str], parsed: list[str], contained: list[bool], labels: list[str]) -> Scored:
    """Answers that each name one class (a label, a tag): correct where the parsed answer is the gold one."""
    correct = [p == g for p, g in zip(parsed, golds)]
    return Scored(classification(golds, parsed, contained, correct, labels), parsed, golds, correct,
                  confusion_rows(golds, parsed))


def classification(golds: list[str], parsed: list[str], contained: list[bool], correct: list[bool],
                   labels: list[str]) -> dict:
    """Accuracy (contained and strict), weighted and macro F1, invalid rate and per-class scores."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    n = len(golds)
    precision, recall, f1, support = precision_recall_fscore_support(golds, parsed, labels=labels, zero_division=0)
    return {
        "n": n,
        "accuracy": round(sum(contained) / n, 4),
        "strict_accuracy": strict_accuracy(correct),
        "f1_weighted": round(float(f1_score(golds, parsed, labels=labels, average="weighted", zero_division=0)), 4),
        "f1_macro": round(float(f1_score(golds, parsed, labels=labels, average="macro", zero_division=0)), 4),
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


# --- XBRL tags: one per FiNER entity, or one per extraction question ----------------------------

def normalize_tag(text: str) -> str:
    """Case, spaces and an optional us-gaap: prefix ignored."""
    text = "".join(text.split()).strip(".;\"'`").lower()
    return text.removeprefix("us-gaap:").removeprefix("us-gaap_")


def score_tag_lists(answers: list[str], gold_lists: list[list[str]], tag_names: list[str]) -> Scored:
    """FiNER, per entity: the answer split on commas, aligned by position; a missing tag is wrong,
    and a part that names no known tag counts as unparsable."""
    by_normal = {normalize_tag(name): name for name in tag_names}
    golds, parsed, contained, per_record = [], [], [], []
    for answer, gold_tags in zip(answers, gold_lists):
        parts = first_line(answer).split(",")
        record = []
        for position, gold in enumerate(gold_tags):
            part = parts[position] if position < len(parts) else ""
            record.append(by_normal.get(normalize_tag(part), INVALID))
            contained.append(normalize_tag(gold) in normalize_tag(part))
        golds += gold_tags
        parsed += record
        per_record.append(record)
    correct = [p == g for p, g in zip(parsed, golds)]
    metrics = classification(golds, parsed, contained, correct, sorted(set(golds)))
    metrics["prompts"] = len(answers)
    per_record_correct = [[p == g for p, g in zip(record, gold_tags)] for record, gold_tags in zip(per_record, gold_lists)]
    return Scored(metrics, per_record, gold_lists, per_record_correct, confusion_rows(golds, parsed))


def score_tags(answers: list[str], golds: list[str]) -> Scored:
    """XBRL tag extraction: normalised exact match (strict) and the paper's containment."""
    parsed = [first_line(a) or INVALID for a in answers]
    canonical = {normalize_tag(g): g for g in golds}
    parsed = [canonical.get(normalize_tag(p), p) if p != INVALID else p for p in parsed]
    contained = [normalize_tag(g) in normalize_tag(a) for a, g in zip(answers, golds)]
    return _scored_by_class(golds, parsed, contained, sorted(set(golds)))


def first_line(answer: str) -> str:
    lines = answer.strip().splitlines()
    return lines[0].strip() if lines else ""


# --- XBRL values --------------------------------------------------------------------------------

def parse_number(text: str) -> Decimal | None:
    """The first number in `text`: separators, currency signs and scale words ("$1.2 billion") read,
    "(12)" and "-12" negative."""
    match = NUMBER.search(text.lower())
    if not match:
        return None
    parenthesis, minus, digits, scale = match.groups()
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    value *= SCALES.get(scale or "", 1)
    return -value if minus or (parenthesis and ")" in text[match.end():match.end() + 2]) else value


def score_values(answers: list[str], golds: list[str]) -> Scored:
    """XBRL value extraction: the paper's containment (separators ignored) and numeric equality,
    exact because filings state exact values."""
    numbers = [parse_number(a) for a in answers]
    n = len(golds)
    correct = [number is not None and number == parse_number(g) for number, g in zip(numbers, golds)]
    contained = sum(g.replace(",", "") in a.replace(",", "") for a, g in zip(answers, golds))
    metrics = {"n": n, "accuracy": round(contained / n, 4), "strict_accuracy": strict_accuracy(correct),
               "invalid_rate": round(sum(number is None for number in numbers) / n, 4)}
    return Scored(metrics, [INVALID if number is None else str(number) for number in numbers], golds, correct)

