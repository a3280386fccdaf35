"""Scoring a task's answers our way (strict), by its kind of answer, with finlora.metrics'
parsers; and the bar every model must clear, always giving the training split's most common
answer. FinLoRA's own scoring rules are finlora.protocols."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from finlora import metrics
from finlora.answers import kind

if TYPE_CHECKING:
    from finlora.tasks import Task


def _labels(task: Task, records: list[dict], answers: list[str], tag_names: list[str] | None) -> metrics.Scored:
    """Against the three-level label where a record has one (NWGI's seven levels), else the target."""
    return metrics.score_labels(answers, [record.get("label", record["target"]) for record in records], task.labels)


def _tag_lists(task: Task, records: list[dict], answers: list[str], tag_names: list[str] | None) -> metrics.Scored:
    return metrics.score_tag_lists(answers, [record["tags"] for record in records], tag_names or [])


def _on_targets(scorer: Callable[[list[str], list[str]], metrics.Scored]):
    def score(task: Task, records: list[dict], answers: list[str], tag_names: list[str] | None) -> metrics.Scored:
        return scorer(answers, [record["target"] for record in records])
    return score


SCORERS = {"label": _labels, "tag_list": _tag_lists, "tag": _on_targets(metrics.score_tags),
           "value": _on_targets(metrics.score_values), "expression": _on_targets(metrics.score_expressions),
           "number": _on_targets(metrics.score_numbers), "text": _on_targets(metrics.score_text)}


def score(task: Task, records: list[dict], answers: list[str], tag_names: list[str] | None = None) -> metrics.Scored:
    """The task's answers scored strictly, one score per record (FiNER and FNXL: per entity)."""
    return SCORERS[task.answer](task, records, answers, tag_names)


@dataclass(frozen=True)
class MostCommonAnswer:
    """The bar a model must clear to have learnt more than the answer's form: always giving the
    training split's most common answer, scored as a model's answers are."""

    answer: str
    scored: metrics.Scored

    def summary(self) -> dict:
        """The answer and its scores, as evaluation writes them beside the model's."""
        return {"answer": self.answer, **metrics.TaskScores.of(self.scored.metrics).as_dict()}


def most_common_answer(task: Task, train: list[dict], test: list[dict],
                       tag_names: list[str] | None = None) -> MostCommonAnswer:
    """The training split's most common answer (label, tag or value; for FiNER, its most common
    tag, given for every entity; a tie goes to the answer met first), scored on `test`."""
    answer = kind(task)
    common = Counter(part for record in train for part in answer.gold_parts(record)).most_common(1)[0][0]
    answers = [",".join([common] * len(answer.gold_parts(record))) for record in test]
    return MostCommonAnswer(common, score(task, test, answers, tag_names))
