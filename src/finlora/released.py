"""FinLoRA's released record format: `{"context": the whole prompt, "target": the answer}`, plus
`doc_path` for XBRL extraction. Checking one record, and what scoring reads beside it.

Read by the finlora source (where a bad record's file and line are known) and by preprocess.
"""

from __future__ import annotations

import re

from finlora.errors import FinloraError

RELEASED_HINT = 'a FinLoRA record is {"context": the whole prompt, "target": the answer}'


def is_released(row: dict) -> bool:
    """Rows already in FinLoRA's prompt form, rather than in the data set's own schema."""
    return "context" in row and "target" in row


def prompt_and_target(row: dict) -> tuple[str, str]:
    """The prompt text and the answer of a released record, checked to be there (the answer's form
    is the task's kind of answer to check: finlora.answers)."""
    context, target = row.get("context"), row.get("target")
    if not isinstance(context, str) or not context.strip():
        raise FinloraError("record has no 'context' prompt text", hint=RELEASED_HINT)
    if isinstance(target, bool) or not isinstance(target, (str, int, float)) or not str(target).strip():
        raise FinloraError(f"record has no 'target' answer (got {target!r})", hint=RELEASED_HINT)
    return context, str(target).strip()


# FiNER prompts list every tag name, comma-separated (FinLoRA's list starts with an empty item).
TAG_LIST_PATTERN = re.compile(r"[A-Z][A-Za-z0-9]+(?:, ?[A-Z][A-Za-z0-9]+){9,}")


def tag_names(records: list[dict]) -> list[str]:
    """FiNER's tag names: those its prompts list, then any gold tag they do not, in first-seen order."""
    names: dict[str, None] = {}
    for record in records:
        listed = TAG_LIST_PATTERN.search(record["context"])
        if listed:
            names.update(dict.fromkeys(name.strip() for name in listed.group(0).split(",")))
        names.update(dict.fromkeys(tag.strip() for tag in str(record["target"]).split(",")))
    return list(names)
