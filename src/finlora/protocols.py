"""Evaluation protocols (`eval.protocol`): how long answers may run and how they are scored.

- `strict`, ours: the answer is its first line, read by its task's kind (finlora.answers).
- `finlora-2025-01`: FinLoRA's code behind the paper's Table 3 (commit 6993ea9,
  test/general_fin/*.py and test/xbrl/xbrl.py).
- `finlora-2025-08`: FinLoRA's code today (commit 7e1cf82, test/test_dataset.py and
  test/inference.py).

Each FinLoRA protocol is a reading of that version's rules, written here from the rules (never
from its code): its answer lengths, what of the generated text it keeps, and how it compares an
answer with its gold answer. Under them generation stops only at the end token: nothing cuts an
answer at its first newline. Strict accuracy is reported under every protocol, always ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from finlora.errors import FinloraError

if TYPE_CHECKING:
    from finlora.answers import AnswerKind
    from finlora.config import EvalParams
    from finlora.tasks import Task

SENTIMENT = ("fpb", "fiqa", "tfns", "nwgi")


@dataclass(frozen=True)
class Protocol:
    name: str
    commit: str  # FinLoRA's commit whose rules it reads; "" for ours
    describe: str  # the report's line
    new_tokens: dict[str, int]  # answer length per task; a task not named uses eval.max_new_tokens
    score: Callable[[Task, AnswerKind, list[dict], list[str]], dict] | None = None  # FinLoRA's accuracy (and F1)

    def check_scores(self, task: str) -> None:
        """A FinLoRA protocol scores only the tasks its version of the code had."""
        if self.score is not None and task not in self.new_tokens:
            raise FinloraError(f"eval.protocol {self.name}: FinLoRA's code of that version has no task {task}",
                               hint=f"its tasks: {', '.join(self.new_tokens)}; use eval.protocol finlora-2025-08 "
                               "or strict")

    @property
    def first_line_only(self) -> bool:
        """Generation stops at a newline and the answer is its first line (ours only)."""
        return self.score is None


def _f1(golds: list[str], predicted: list[str]) -> float:
    from sklearn.metrics import f1_score

    return round(float(f1_score(golds, predicted, average="weighted", zero_division=0)), 4)


# --- The paper's code, 2025-01 (6993ea9) ---------------------------------------------------------
# Each script decodes prompt and answer together and keeps all that follows "Answer:", so the whole
# continuation counts. Classification answers and gold labels are both mapped by the first rule
# that matches; XBRL and FiNER count an answer correct when it contains the gold answer.

def paper_direction(text: str) -> str:
    """Sentiment (fpb.py, fiqa.py, tfns.py, nwgi.py): "positive" or "Positive" anywhere, else
    "negative" or "Negative", else neutral, so an answer naming no label counts as neutral and
    "NEGATIVE" too. NWGI's seven levels so fall to their direction."""
    if "positive" in text or "Positive" in text:
        return "positive"
    return "negative" if "negative" in text or "Negative" in text else "neutral"


def paper_headline(text: str) -> str:
    """headline.py: "yes" anywhere (case ignored), else "no" anywhere (in "not" and "know" too), else nothing."""
    lowered = text.lower()
    return "Yes" if "yes" in lowered else "No" if "no" in lowered else ""


def paper_entity(text: str) -> str:
    """ner.py: organization, else person, else location, in that order (case ignored), else nothing."""
    lowered = text.lower()
    return next((label for label in ("organization", "person", "location") if label in lowered), "")


PAPER_READERS = {**dict.fromkeys(SENTIMENT, paper_direction), "headline": paper_headline, "ner": paper_entity}


def score_2025_01(task: Task, answer_kind: AnswerKind, records: list[dict], answers: list[str]) -> dict:
    read = PAPER_READERS.get(task.name)
    if read is None:  # xbrl.py: the gold answer, as written, inside the answer (case kept)
        correct = [str(record["target"]) in answer for record, answer in zip(records, answers)]
        return {"accuracy": round(sum(correct) / len(correct), 4)}
    golds = [read(str(record["target"])) for record in records]
    predicted = [read(answer) for answer in answers]
    correct = [p == g for p, g in zip(predicted, golds)]
    # nwgi.py passes the answers as the truth and the gold labels as the predictions to sklearn
    f1 = _f1(predicted, golds) if task.name == "nwgi" else _f1(golds, predicted)
    return {"accuracy": round(sum(correct) / len(correct), 4), "f1_weighted": f1}


# --- Today's code, 2025-08 (7e1cf82) -------------------------------------------------------------

def todays_answer(continuation: str) -> str:
    """inference.py: what follows the last "Answer:" of prompt and answer, stripped; the prompt
    ends with it, so the whole continuation unless the model writes "Answer:" again."""
    return continuation.split("Answer:")[-1].strip()


def batched_pairs(target: str, answer: str) -> list[tuple[str, str]]:
    """process_batched (FiNER, FNXL): gold and answer split on commas, parts stripped of spaces
    and newlines, the answer's parts cut or padded with empty strings to the gold's count."""
    golds = [part.strip().replace("\n", "") for part in target.split(",")]
    parts = [part.strip().replace("\n", "") for part in answer.split(",")]
    return list(zip(golds, (parts + [""] * len(golds))[:len(golds)]))


def first_label_found(answer: str, labels: list[str]) -> str | None:
    """evaluate_accuracy: the label (lower case) that starts earliest in the lower-cased answer. Its
    tie order is a set's; here the longer label wins a tie."""
    lowered = answer.lower()
    found = [(lowered.find(label), -len(label), label) for label in labels if label in lowered]
    return min(found)[2] if found else None


def score_2025_08(task: Task, answer_kind: AnswerKind, records: list[dict], answers: list[str]) -> dict:
    """Accuracy and F1 as test_dataset.py computes them; free text it scores by BERTScore alone,
    which evaluation adds where the scorer model loads (finlora.bertscore)."""
    if not answer_kind.has_accuracy:
        return {}
    answers = [todays_answer(answer) for answer in answers]
    if answer_kind.several_per_prompt:
        pairs = [pair for record, answer in zip(records, answers) for pair in batched_pairs(str(record["target"]), answer)]
    else:
        pairs = [(str(record["target"]), answer) for record, answer in zip(records, answers)]
    labels = sorted({gold.lower() for gold, _ in pairs})  # every gold answer of the test set is a label
    correct = [first_label_found(answer, labels) == gold.lower() for gold, answer in pairs]
    scores = {"accuracy": round(sum(correct) / len(correct), 4)}
    if answer_kind.has_f1:  # the gold answer where right, else the answer as given
        scores["f1_weighted"] = _f1([g for g, _ in pairs], [g if ok else a for (g, a), ok in zip(pairs, correct)])
    return scores


PROTOCOLS = {protocol.name: protocol for protocol in (
    Protocol("strict", "", "Accuracy: the gold answer is contained in the answer's first line (whole words); strict "
             "accuracy counts only answers whose first label is the gold one; invalid answers name no label at all. "
             "FiNER is scored per entity; Tags by normalised element name; Values as numbers (strict: numerically "
             "equal; no F1).", {}),
    Protocol("finlora-2025-01", "6993ea9",
             "FinLoRA's code behind the paper's Table 3 (commit 6993ea9): raw prompts, its answer lengths (5 tokens "
             "sentiment, 20 headline and NER, 60 XBRL and FiNER), the whole answer kept; sentiment, headline and NER "
             "answers and gold labels mapped by its first matching rule (sentiment by direction: no label is "
             "neutral), FiNER and XBRL correct when the answer contains the gold answer. Strict accuracy is ours.",
             {**dict.fromkeys(SENTIMENT, 5), "headline": 20, "ner": 20, "finer": 60, "xbrl_tags": 60, "xbrl_value": 60},
             score_2025_01),
    Protocol("finlora-2025-08", "7e1cf82",
             "FinLoRA's code today (commit 7e1cf82): raw prompts, its answer lengths (10 tokens classification, 20 "
             "XBRL tags and values, 30 formulas, 50 math and free text, 100 FiNER and FNXL), the whole answer kept; an "
             "answer is correct when the first of the test set's gold answers found in it is its own (NWGI on its "
             "seven levels), FiNER and FNXL split on commas and compared tag by tag; F1 over the gold answer where "
             "right, the answer where not; free text by BERTScore alone. Strict accuracy is ours.",
             {**dict.fromkeys(SENTIMENT + ("headline", "ner"), 10), "finer": 100, "xbrl_tags": 20, "xbrl_value": 20,
              "xbrl_formula": 30, "fnxl": 100, "formula": 50, "xbrl_term": 50, "financebench": 50},
             score_2025_08),
)}


def answer_length(eval_params: EvalParams, task: str) -> int:
    """New tokens to generate for the task: the protocol's own length, else eval.max_new_tokens(_by_task)."""
    fixed = PROTOCOLS[eval_params.protocol].new_tokens.get(task)
    return fixed or eval_params.max_new_tokens_by_task.get(task, eval_params.max_new_tokens)
