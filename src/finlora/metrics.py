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
from fractions import Fraction

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
    them. A score a task does not have is None: F1 for numbers, accuracy for free text (scored by
    ROUGE-L, and BERTScore where a scorer model was loaded)."""

    accuracy: float | None = None
    strict_accuracy: float | None = None
    invalid_rate: float | None = None
    f1_weighted: float | None = None
    rouge_l: float | None = None
    bertscore_f1: float | None = None

    @classmethod
    def of(cls, metrics: dict) -> "TaskScores":
        return cls(**{name: metrics.get(name) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        """The scores `dvc metrics` compares; a missing score is left out, not written as null."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @property
    def headline(self) -> tuple[str, float]:
        """The score a task is ranked by: strict accuracy, else (free text) BERTScore F1, else ROUGE-L."""
        name = next(name for name in ("strict_accuracy", "bertscore_f1", "rouge_l") if getattr(self, name) is not None)
        return name, getattr(self, name)

    def cell(self) -> str:
        """Accuracy in % and weighted F1 where the task has one ("71.70 / 0.695"); free text its
        ROUGE-L F1 in % (and BERTScore F1: "R-L 41.20, BS 0.873")."""
        if self.accuracy is None:
            bertscore = f", BS {self.bertscore_f1:.3f}" if self.bertscore_f1 is not None else ""
            return f"R-L {100 * self.rouge_l:.2f}{bertscore}"
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
    return _score_numbers(answers, golds, lambda number, gold: number == parse_number(gold))


def _score_numbers(answers: list[str], golds: list[str], equal) -> Scored:
    """The first number of each answer against its gold number, compared by `equal(number, gold
    text)` (strict); accuracy: the gold's text, separators aside, inside the answer."""
    numbers = [parse_number(a) for a in answers]
    n = len(golds)
    correct = [number is not None and equal(number, g) for number, g in zip(numbers, golds)]
    contained = sum(g.replace(",", "") in a.replace(",", "") for a, g in zip(answers, golds))
    metrics = {"n": n, "accuracy": round(contained / n, 4), "strict_accuracy": strict_accuracy(correct),
               "invalid_rate": round(sum(number is None for number in numbers) / n, 4)}
    return Scored(metrics, [INVALID if number is None else str(number) for number in numbers], golds, correct)


# --- Financial math: a number to the gold's decimals ------------------------------------------

def decimals(text: str) -> int:
    """How many decimals a number as written gives ("15092.44" -> 2, "12" -> 0)."""
    match = re.search(r"\.(\d+)", text)
    return len(match.group(1)) if match else 0


def score_numbers(answers: list[str], golds: list[str]) -> Scored:
    """Formula answers: the first number of the answer, rounded to as many decimals as the gold
    answer gives, equals it (strict); the gold answer's text inside the answer (accuracy)."""
    return _score_numbers(answers, golds, lambda number, gold: round(number, decimals(gold)) == parse_number(gold))


# --- XBRL formulas: an expression over the filing's values ----------------------------------------

def expression_value(text: str) -> Fraction | None:
    """The exact value of an arithmetic expression of numbers (+ - * / and parentheses; thousands
    separators allowed), read by a parser of that grammar alone, never by `eval`; None for
    anything else or a division by zero."""
    tree = _parsed(text.replace(",", "").strip())
    try:
        return _value(tree.body) if tree is not None else None
    except (ValueError, ZeroDivisionError):
        return None


def _parsed(text: str):
    import ast

    try:
        return ast.parse(text, mode="eval") if text and len(text) < 500 else None
    except SyntaxError:
        return None


def _value(node) -> Fraction:
    import ast

    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        return ARITHMETIC[type(node.op)](_value(node.left), _value(node.right))
    raise ValueError("not arithmetic")


def _arithmetic() -> dict:
    import ast
    import operator

    return {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


ARITHMETIC = _arithmetic()


def score_expressions(answers: list[str], golds: list[str]) -> Scored:
    """XBRL formula answers: right (strict) when the answer's first line, as an expression, has the
    gold formula's value; a bare number counts at the decimals it gives, at least two ("16.15"
    for (6226 / 38542) * 100). Accuracy: the gold formula's text, spaces aside, inside the answer."""
    def squeezed(text: str) -> str:
        return "".join(text.split())

    lines = [first_line(a) for a in answers]
    values = [expression_value(line) for line in lines]
    correct = []
    for line, value, gold in zip(lines, values, golds):
        expected = expression_value(gold)
        if value is None or expected is None:
            correct.append(False)
        elif NUMBER.fullmatch(line.replace(",", "")):  # a bare number
            places = max(2, decimals(line))
            correct.append(round(value, places) == round(expected, places))
        else:
            correct.append(value == expected)
    n = len(golds)
    metrics = {"n": n, "accuracy": round(sum(squeezed(g) in squeezed(a) for a, g in zip(answers, golds)) / n, 4),
               "strict_accuracy": strict_accuracy(correct),
               "invalid_rate": round(sum(value is None for value in values) / n, 4)}
    return Scored(metrics, [INVALID if value is None else line for line, value in zip(lines, values)], golds, correct)


# --- Free text: ROUGE-L ----------------------------------------------------------------------------

def rouge_l(answer: str, gold: str) -> float:
    """ROUGE-L F1: the longest common subsequence of the two texts' lower-cased words, over the
    answer's length (precision) and the gold's (recall)."""
    a, g = normalize(answer).split(), normalize(gold).split()
    if not a or not g:
        return 0.0
    previous = [0] * (len(g) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(g, start=1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[j - 1]))
        previous = current
    common = previous[-1]
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(g)
    return 2 * precision * recall / (precision + recall)


def score_text(answers: list[str], golds: list[str]) -> Scored:
    """Free-text answers (XBRL terms, FinanceBench): mean ROUGE-L F1 over records; each record's
    score is what `finlora compare` pairs. BERTScore, which needs a scorer model, is added by
    evaluation (finlora.bertscore)."""
    scores = [round(rouge_l(a, g), 4) for a, g in zip(answers, golds)]
    n = len(golds)
    metrics = {"n": n, "rouge_l": round(sum(scores) / n, 4),
               "invalid_rate": round(sum(not a.strip() for a in answers) / n, 4)}
    return Scored(metrics, [a.strip() or INVALID for a in answers], golds, scores)
