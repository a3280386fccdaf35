"""Raw rows -> prompt records {"context", "target", ...}, one builder per kind of task.

Classification rows become one prompt each. FiNER sentences are highlighted (each tagged entity
becomes a question) and their questions batched several to a prompt. XBRL questions become
one-shot prompts over the facts of their filing. A row that cannot be used either stops the stage
with its file and line or, with `data.on_bad_record: skip`, is skipped and counted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from finlora import xbrl
from finlora.config import Params
from finlora.errors import FinloraError
from finlora.prompts import build_context, finer_context, finer_question, training_ids, xbrl_context, xbrl_question
from finlora.released import is_released, released_record
from finlora.tasks import LABEL, TAG, TAG_LIST, VALUE, Task, iob_type


@dataclass
class Prepared:
    records: list[dict] = field(default_factory=list)
    skipped_bad_records: int = 0
    dropped_over_budget: int = 0  # prompts longer than the task's budget, never cut

    def stats(self) -> dict:
        return {"records": len(self.records), "skipped_bad_records": self.skipped_bad_records,
                "dropped_over_budget": self.dropped_over_budget}


class BadRecords:
    """Where a bad row stops the stage (naming file:line) or is skipped and counted."""

    def __init__(self, path: Path, policy: str, prepared: Prepared):
        self.path, self.policy, self.prepared = path, policy, prepared

    @contextlib.contextmanager
    def row(self, line: int | None) -> Iterator[None]:
        """Errors inside name `path:line` (or only the path where no single line is to blame)."""
        try:
            yield
        except FinloraError as error:
            if self.policy == "error":
                where = f"{self.path}:{line}" if line else str(self.path)
                raise FinloraError(f"{where}: {error.args[0]}",
                                   hint=error.hint or "set data.on_bad_record: skip to skip and count such rows") from None
            self.prepared.skipped_bad_records += 1


def prepare(task: Task, rows: list[dict], path: Path, params: Params, tag_names: list[str] | None = None,
            filings: Path | None = None, fits: Callable[[str, str], bool] | None = None) -> Prepared:
    """Records of one split. `path` names the rows' file in messages; FiNER needs the tag names
    and `fits` (does a prompt + answer fit train.max_seq_len); XBRL needs the filings folder."""
    prepared = Prepared()
    bad = BadRecords(path, params.data.on_bad_record, prepared)
    if rows and is_released(rows[0]):
        for_each_row(rows, bad, lambda row: add_within_budget(released_record(task, row), prepared, params, task))
    elif task.answer == LABEL:
        for_each_row(rows, bad, lambda row: prepared.records.append(label_record(task, row)))
    elif task.answer == TAG_LIST:
        questions: list[tuple[str, str]] = []
        for_each_row(rows, bad, lambda row: questions.extend(
            finer_questions(task, row, tag_names, params.finer.entities_per_sentence)))
        prepared.records = finer_records(questions, tag_names, params.finer.questions_per_prompt, fits, bad)
    else:
        documents = Filings(filings)
        for_each_row(rows, bad, lambda row: add_within_budget(
            xbrl_record(task, row, documents, params.xbrl.text_value_chars), prepared, params, task))
    return prepared


def add_within_budget(record: dict, prepared: Prepared, params: Params, task: Task) -> None:
    """XBRL prompts longer than xbrl.max_prompt_chars are dropped and counted, never cut."""
    if task.answer in (TAG, VALUE) and len(record["context"]) > params.xbrl.max_prompt_chars:
        prepared.dropped_over_budget += 1
    else:
        prepared.records.append(record)


def for_each_row(rows: list[dict], bad: BadRecords, use: Callable[[dict], None]) -> None:
    """`use` every row in order; a row with an id seen before is bad, like one `use` rejects."""
    lines_by_id: dict[str, int] = {}
    for line, row in enumerate(rows, start=1):
        with bad.row(line):
            if "id" in row:
                first = lines_by_id.setdefault(str(row["id"]), line)
                if first != line:
                    raise FinloraError(f"id {row['id']!r} was already used on line {first}",
                                       hint="ids must be unique within a split")
            use(row)


def label_record(task: Task, row: dict) -> dict:
    example = task.example(row)
    return {"context": build_context(example), "target": example.answer}


# --- FiNER -----------------------------------------------------------------------------------

def entities(tokens: list[str], tags: list[str], tag_names: list[str]) -> list[tuple[str, str]]:
    """(text, tag) of each entity: a B- token and the I- tokens of the same tag that follow it."""
    if len(tokens) != len(tags):
        raise FinloraError(f"{len(tokens)} tokens but {len(tags)} ner_tags",
                           hint="tokens and ner_tags must have one entry per token")
    known = set(tag_names)
    found: list[tuple[list[str], str]] = []
    previous = None  # the tag of the previous token's entity, None after an O
    for token, tag in zip(tokens, tags):
        if not isinstance(tag, str):
            raise FinloraError(f"ner_tags holds {tag!r}, not a tag name",
                               hint="tags are names such as B-Revenues (ids become names at download)")
        if tag == "O":
            previous = None
            continue
        name = iob_type(tag)
        if name not in known:
            raise FinloraError(f"tag {tag!r} is not in the label set",
                               hint=f"O, or B-/I- followed by one of {len(known)} tags such as {tag_names[0]}")
        if tag.startswith("I-") and previous == name:
            found[-1][0].append(token)
        else:  # B-, or an I- that starts a run (read leniently)
            found.append(([token], name))
        previous = name
    return [(" ".join(words), name) for words, name in found]


def finer_questions(task: Task, row: dict, tag_names: list[str], per_sentence: int) -> list[tuple[str, str]]:
    """(question, gold tag) for the first `per_sentence` entities of one sentence."""
    task.check_fields(row)
    sentence = " ".join(row["tokens"])
    return [(finer_question(text, sentence), tag)
            for text, tag in entities(row["tokens"], row["ner_tags"], tag_names)[:per_sentence]]


def finer_records(questions: list[tuple[str, str]], tag_names: list[str], per_prompt: int,
                  fits: Callable[[str, str], bool], bad: BadRecords) -> list[dict]:
    """Consecutive questions batched up to `per_prompt` at a time, fewer where the prompt with its
    answer would not fit: the tag list and the answer are never cut."""
    records, start = [], 0
    while start < len(questions):
        size = min(per_prompt, len(questions) - start)
        while size and not fits(*_finer_pair(questions[start:start + size], tag_names)):
            size -= 1
        if size == 0:
            with bad.row(None):
                raise FinloraError(f"question {start + 1}: even alone, with the {len(tag_names)} tag names, "
                                   "it does not fit train.max_seq_len", hint="raise train.max_seq_len")
            start += 1
            continue
        batch = questions[start:start + size]
        context, target = _finer_pair(batch, tag_names)
        records.append({"context": context, "target": target, "tags": [tag for _, tag in batch]})
        start += size
    return records


def _finer_pair(batch: list[tuple[str, str]], tag_names: list[str]) -> tuple[str, str]:
    return finer_context(tag_names, [question for question, _ in batch]), ", ".join(tag for _, tag in batch)


# --- XBRL extraction ---------------------------------------------------------------------------

class Filings:
    """Parsed filings of a folder, each read once."""

    def __init__(self, folder: Path | None):
        self.folder, self.parsed = folder, {}

    def get(self, name: str) -> xbrl.Filing:
        if name not in self.parsed:
            path = xbrl.filing_path(self.folder or Path("."), name)
            if path is None:
                raise FinloraError(f"filing {name!r} is not in {self.folder}/")
            self.parsed[name] = xbrl.parse_filing(path)
        return self.parsed[name]


def xbrl_record(task: Task, row: dict, filings: Filings, text_value_chars: int) -> dict:
    task.check_fields(row)
    try:
        year = int(row["fiscal_year"])
    except (TypeError, ValueError):
        raise FinloraError(f"fiscal_year {row['fiscal_year']!r} is not a year") from None
    facts = filings.get(str(row["filing"])).facts_for_year(year)
    question = xbrl_question(task.answer, row["company"], row["concept"], year)
    lines = [xbrl.fact_line(fact, text_value_chars) for fact in facts]
    return {"context": xbrl_context(task.answer, lines, question), "target": str(row["answer"]).strip()}


def fits_in(tokenizer, max_seq_len: int, chat_template: bool) -> Callable[[str, str], bool]:
    """Whether a prompt and its answer, tokenised as training will, fit `max_seq_len` tokens."""
    def fits(context: str, target: str) -> bool:
        return len(training_ids(tokenizer, context, target, chat_template)[0]) <= max_seq_len
    return fits
