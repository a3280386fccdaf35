"""The kinds of answer a task asks for, each one object that owns what differs between them before
any model answers: building records from raw rows (with finlora.prepare's builders), checking
the target of a record from FinLoRA's released files, and the gold answers a record is scored
on. Scoring lives apart (finlora.scoring, and FinLoRA's own rules in finlora.protocols), so
editing a scorer never makes the data stale.

- LABEL: one label from the task's closed set (sentiment, headline, NER).
- TAG_LIST: FiNER's comma-separated XBRL tags, one per highlighted entity of a batched prompt.
- TAG: one us-gaap element name (XBRL tag extraction).
- VALUE: one number as filed (XBRL value extraction).
- EXPRESSION: a formula with the filing's values put in (XBRL formula extraction).
- NUMBER: a number to two decimals (financial math).
- TEXT: free text (XBRL terms, FinanceBench), scored by overlap with the gold text.

A task names its kind (`Task.answer`, a key of KINDS); code that handles every task gets the
object with `kind(task)`, calls its methods and reads its flags, and never asks which kind it is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from finlora.errors import FinloraError
from finlora.finer import finer_questions, finer_records
from finlora.prompts import build_context
from finlora.released import prompt_and_target
from finlora.rows import RowContext, for_each_row
from finlora.xbrl import Filings, xbrl_record

NUMBER = re.compile(r"-?\d[\d,]*(\.\d+)?")  # a released number target, as filed

if TYPE_CHECKING:
    from finlora.config import Params
    from finlora.tasks import Task


class AnswerKind:
    name = ""
    shown_as = ""  # `finlora tasks`: what an answer is, for tasks without a closed label set
    has_f1 = True  # a weighted F1 over gold answers means something (not for numbers)
    has_accuracy = True  # answers are right or wrong (free text is scored by overlap instead)
    several_per_prompt = False  # a prompt asks several questions; the target joins their answers with commas
    target_form: re.Pattern | None = None  # what a released target must look like, where it has a form
    target_hint = ""

    def records(self, task: Task, rows: list[dict], context: RowContext) -> list[dict]:
        """Prompt records {"context", "target", ...} of raw rows in the data set's own schema."""
        raise FinloraError(f"task {task.name} is read from FinLoRA's records only",
                           hint='give rows as {"context": the prompt, "target": the answer}')

    def released_fields(self, task: Task, target: str) -> dict:
        """The checked target of a FinLoRA record, with what scoring reads beside it."""
        if self.target_form is not None and not self.target_form.fullmatch(target):
            raise FinloraError(f"target {target!r} is not {self.shown_as}", hint=self.target_hint)
        return {"target": target}

    def within_budget(self, record: dict, params: Params) -> bool:
        """Whether a prompt is short enough to keep (prompts are dropped and counted, never cut)."""
        return True

    def gold_parts(self, record: dict) -> list[str]:
        """The answers a record is scored on, one per scored unit (FiNER: one per entity)."""
        return [record["target"]]


class LabelAnswer(AnswerKind):
    name = "label"

    def records(self, task: Task, rows: list[dict], context: RowContext) -> list[dict]:
        built: list[dict] = []
        for_each_row(rows, context.bad, lambda row: built.append(self.record(task, row)))
        return built

    @staticmethod
    def record(task: Task, row: dict) -> dict:
        example = task.example(row)
        return {"context": build_context(example), "target": example.answer}

    def gold_parts(self, record: dict) -> list[str]:
        return [record.get("label", record["target"])]

    def released_fields(self, task: Task, target: str) -> dict:
        """Labels are read case-blind; a level of a finer scale (NWGI's seven) is kept as the
        target and scored as its three-level `label`."""
        target = target.lower()
        label = task.levels.get(target, target)
        if label not in task.labels:
            levels = f", or one of the {len(task.levels)} levels {', '.join(task.levels)}" if task.levels else ""
            raise FinloraError(f"target {target!r} is not a {task.name} label",
                               hint=f"valid labels: {', '.join(task.labels)}{levels}")
        return {"target": target, "label": label} if label != target else {"target": target}


class TagListAnswer(AnswerKind):
    name = "tag_list"
    shown_as = "US-GAAP tags (from the data set)"
    several_per_prompt = True

    def records(self, task: Task, rows: list[dict], context: RowContext) -> list[dict]:
        questions: list[tuple[str, str]] = []
        per_sentence = context.params.finer.entities_per_sentence
        for_each_row(rows, context.bad,
                     lambda row: questions.extend(finer_questions(task, row, context.tag_names, per_sentence)))
        return finer_records(questions, context.tag_names, context.params.finer.questions_per_prompt,
                             context.fits, context.bad)

    def released_fields(self, task: Task, target: str) -> dict:
        tags = [tag.strip() for tag in target.split(",")]
        if not all(tags):
            raise FinloraError(f"target {target!r} has an empty tag", hint="FiNER targets are tag names joined by commas")
        return {"target": target, "tags": tags}

    def gold_parts(self, record: dict) -> list[str]:
        return record["tags"]


class ExtractionAnswer(AnswerKind):
    """XBRL extraction: one-shot prompts over the facts of the filing a question names."""

    def records(self, task: Task, rows: list[dict], context: RowContext) -> list[dict]:
        filings = Filings(context.filings)
        text_value_chars = context.params.xbrl.text_value_chars
        built: list[dict] = []
        for_each_row(rows, context.bad, lambda row: built.append(xbrl_record(task, row, filings, text_value_chars)))
        return built

    def within_budget(self, record: dict, params: Params) -> bool:
        return len(record["context"]) <= params.xbrl.max_prompt_chars


class TagAnswer(ExtractionAnswer):
    name = "tag"
    shown_as = "a us-gaap element"
    target_form = re.compile(r"us-gaap:[A-Za-z][A-Za-z0-9]*")
    target_hint = "tag targets look like us-gaap:NetIncomeLoss"


class ValueAnswer(ExtractionAnswer):
    name = "value"
    shown_as = "a number"
    has_f1 = False
    target_form = NUMBER
    target_hint = "value targets are numbers as filed, such as 2540000000"


class ExpressionAnswer(ExtractionAnswer):
    name = "expression"
    shown_as = "a formula with values"
    has_f1 = False
    target_form = re.compile(r"[-+*/().,\d\s]*\d[-+*/().,\d\s]*[-+*/][-+*/().,\d\s]*")
    target_hint = "formula targets are arithmetic over numbers, such as (6226000000 / 38542000000) * 100"


class NumberAnswer(AnswerKind):
    name = "number"
    shown_as = "a number (2 decimals)"
    has_f1 = False
    target_form = NUMBER
    target_hint = "math targets are numbers, such as 15092.44"


class TextAnswer(AnswerKind):
    name = "text"
    shown_as = "free text"
    has_f1 = False
    has_accuracy = False


KINDS = {answer.name: answer for answer in (LabelAnswer(), TagListAnswer(), TagAnswer(), ValueAnswer(),
                                            ExpressionAnswer(), NumberAnswer(), TextAnswer())}


def kind(task: Task) -> AnswerKind:
    return KINDS[task.answer]


def released_record(task: Task, row: dict) -> dict:
    """A record of FinLoRA's released files as it is, checked, with what scoring reads beside it
    (the three-level `label` of a seven-level NWGI target, FiNER's per-entity `tags`)."""
    context, target = prompt_and_target(row)
    return {"context": context, **kind(task).released_fields(task, target)}
