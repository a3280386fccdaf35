"""Raw rows or FinLoRA's released records -> the prompt records {"context", "target", ...} of one
split, built by the task's kind of answer (finlora.answers); prompts over the task's budget are
dropped and counted, never cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from finlora.answers import kind, released_record
from finlora.prompts import task_marked, training_ids
from finlora.released import is_released
from finlora.rows import BadRecords, RowContext, for_each_row

if TYPE_CHECKING:
    from finlora.config import Params
    from finlora.tasks import Task


@dataclass
class Prepared:
    records: list[dict] = field(default_factory=list)
    skipped_bad_records: int = 0
    dropped_over_budget: int = 0  # prompts longer than the task's budget, never cut

    def stats(self) -> dict:
        return {"records": len(self.records), "skipped_bad_records": self.skipped_bad_records,
                "dropped_over_budget": self.dropped_over_budget}


def prepare(task: Task, rows: list[dict], path: Path, params: Params, tag_names: list[str] | None = None,
            filings: Path | None = None, fits: Callable[[str, str], bool] | None = None) -> Prepared:
    """Records of one split. `path` names the rows' file in messages; FiNER needs the tag names
    and `fits` (does a prompt + answer fit train.max_seq_len); XBRL needs the filings folder."""
    answer = kind(task)
    marker = params.model.task_marker
    if fits is not None and marker:
        fits = marked_fits(fits, task.name)
    bad = BadRecords(path, params.data.on_bad_record)
    if rows and is_released(rows[0]):
        records: list[dict] = []
        for_each_row(rows, bad, lambda row: records.append(released_record(task, row)))
    else:
        records = answer.records(task, rows, RowContext(bad, params, tag_names, filings, fits))
    prepared = Prepared(skipped_bad_records=bad.skipped)
    for record in records:
        record["context"] = task_marked(record["context"], task.name, marker)
        if answer.within_budget(record, params):
            prepared.records.append(record)
        else:
            prepared.dropped_over_budget += 1
    return prepared


def marked_fits(fits: Callable[[str, str], bool], task: str) -> Callable[[str, str], bool]:
    """`fits` of the prompt with its task marker, so FiNER packs questions into what is trained."""
    return lambda context, target: fits(task_marked(context, task, True), target)


def fits_in(tokenizer, max_seq_len: int, chat_template: bool) -> Callable[[str, str], bool]:
    """Whether a prompt and its answer, tokenised as training will, fit `max_seq_len` tokens."""
    def fits(context: str, target: str) -> bool:
        return len(training_ids(tokenizer, context, target, chat_template)[0]) <= max_seq_len
    return fits
