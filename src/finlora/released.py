"""FinLoRA's released record format: `{"context": the whole prompt, "target": the answer}`, plus
`doc_path` for XBRL extraction. Checking one record, and what scoring reads beside it.

Read by the finlora source (where a bad record's file and line are known) and by preprocess.
"""

from __future__ import annotations

import re

from finlora.errors import FinloraError
from finlora.tasks import LABEL, NWGI_LABELS, TAG, TAG_LIST, VALUE, Task

RELEASED_HINT = 'a FinLoRA record is {"context": the whole prompt, "target": the answer}'
TAG_TARGET = re.compile(r"us-gaap:[A-Za-z][A-Za-z0-9]*")
NUMBER_TARGET = re.compile(r"-?\d[\d,]*(\.\d+)?")


def is_released(row: dict) -> bool:
    """Rows already in FinLoRA's prompt form, rather than in the data set's own schema."""
    return "context" in row and "target" in row


def released_record(task: Task, row: dict) -> dict:
    """A record of FinLoRA's released files as it is, checked, with what scoring reads beside it:
    the three-level `label` of a seven-level NWGI target, FiNER's per-entity `tags`."""
    context, target = row.get("context"), row.get("target")
    if not isinstance(context, str) or not context.strip():
        raise FinloraError("record has no 'context' prompt text", hint=RELEASED_HINT)
    if isinstance(target, bool) or not isinstance(target, (str, int, float)) or not str(target).strip():
        raise FinloraError(f"record has no 'target' answer (got {target!r})", hint=RELEASED_HINT)
    target = str(target).strip()
    record = {"context": context, "target": target}
    if task.answer == LABEL:
        record["target"] = target.lower()
        label = NWGI_LABELS.get(record["target"], record["target"]) if task.name == "nwgi" else record["target"]
        if label not in task.labels:
            levels = f", or one of the seven levels {', '.join(NWGI_LABELS)}" if task.name == "nwgi" else ""
            raise FinloraError(f"target {target!r} is not a {task.name} label",
                               hint=f"valid labels: {', '.join(task.labels)}{levels}")
        if label != record["target"]:
            record["label"] = label
    elif task.answer == TAG_LIST:
        record["tags"] = [tag.strip() for tag in target.split(",")]
        if not all(record["tags"]):
            raise FinloraError(f"target {target!r} has an empty tag", hint="FiNER targets are tag names joined by commas")
    elif task.answer == TAG and not TAG_TARGET.fullmatch(target):
        raise FinloraError(f"target {target!r} is not a us-gaap element", hint="tag targets look like us-gaap:NetIncomeLoss")
    elif task.answer == VALUE and not NUMBER_TARGET.fullmatch(target):
        raise FinloraError(f"target {target!r} is not a number", hint="value targets are numbers as filed, such as 2540000000")
    return record


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
