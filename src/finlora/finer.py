"""FiNER-139 rows -> batched prompts: each tagged entity of a sentence becomes a highlighted-entity
question, and consecutive questions share a prompt that lists every tag name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from finlora.errors import FinloraError
from finlora.prompts import finer_context, finer_question
from finlora.rows import BadRecords

if TYPE_CHECKING:
    from finlora.tasks import Task


def iob_type(tag: str) -> str | None:
    """The entity type of an IOB tag ("B-Revenues" and "I-Revenues" -> "Revenues"); None for "O"
    and for anything that is not an IOB tag."""
    return tag[2:] if isinstance(tag, str) and tag[:2] in ("B-", "I-") and tag[2:] else None


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
