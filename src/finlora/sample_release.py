"""The sample generator's data written in one of FinLoRA's release layouts, so that the
released-files path (`data.source: finlora`) runs offline and in the tests: `finlora write-sample
OUT --release 2025-05`. Files are written as that release has them: tasks that share a file share
it, TFNS's labels are swapped where FinLoRA's own files swap them, and the sentiment texts take
the forms FinLoRA's records have (FPB's Financial PhraseBank sentences tokenized, TFNS's tweets
naming companies rather than cashtags), by which a shared file is read (finlora.sources.combined)."""

from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from pathlib import Path

from finlora.config import Params
from finlora.errors import FinloraError
from finlora.files import write_jsonl
from finlora.prepare import prepare
from finlora.prompts import Example, build_context, sentiment_instruction
from finlora import samples
from finlora.sources.released import RELEASES, SWAPPED_TFNS, TFNS_CORRECTION, Release
from finlora.tasks import TASKS, Task


def release_named(name: str) -> Release:
    """The release that appeared in month `name`, such as 2025-05."""
    for release in RELEASES:
        if release.name == name:
            return release
    raise FinloraError(f"no FinLoRA release {name!r}", hint="releases: " + ", ".join(r.name for r in RELEASES))


def write_sample(out: Path, params: Params, n_train: int, n_test: int, release: Release = RELEASES[0]) -> dict[str, int]:
    """The sample generator's data for every task the release has files for, prompted as
    preprocess prompts it, in the release's layout under `out`. Returns the records per file."""
    files: dict[str, list[dict]] = defaultdict(list)
    for task in TASKS.values():
        names = {split: getattr(release, split).get(task.name) for split in ("train", "test")}
        if not any(names.values()):
            continue
        raw = samples.generate(task.name, n_train, n_test, params.data.seed)
        for split, name in names.items():
            if name:
                files[name] += released_records(task, raw, split, params, swap_tfns=name in SWAPPED_TFNS)
    for name, records in files.items():
        write_jsonl(out / name, records)
    return {name: len(records) for name, records in files.items()}


RELEASED_TEXT = {  # task: (the raw text field, the text as FinLoRA's records have it)
    "fpb": ("sentence", lambda text: re.sub(r"(\w)([.,;:!?])(?=\s|$)", r"\1 \2", text).replace("'s ", " 's ")),
    "tfns": ("text", lambda text: re.sub(r"\$(?=[A-Za-z])", "", text)),
}


def released_records(task: Task, raw: dict, split: str, params: Params, swap_tfns: bool) -> list[dict]:
    """One split of the generated data as FinLoRA's records: {"context", "target"}, XBRL's `doc_path`."""
    rows = raw["splits"][split]
    if task.name in RELEASED_TEXT:
        field, as_released = RELEASED_TEXT[task.name]
        rows = [{**row, field: as_released(row[field])} for row in rows]
    with tempfile.TemporaryDirectory() as filings:
        for name, content in raw.get("filings", {}).items():
            (Path(filings) / name).write_bytes(content)
        records = prepare(task, rows, Path(f"{task.name}/{split}"), params, raw.get("tag_names"),
                          Path(filings), fits=lambda context, target: True).records
    if task.levels:  # FinLoRA's NWGI asks for, and answers with, the seven levels
        instruction = sentiment_instruction(tuple(task.levels))
        records = [{"context": build_context(Example(instruction, row["news"], "")), "target": row["label"]}
                   for row in rows]
    if task.reads_filings:  # the filing a question came from, as FinLoRA records it
        records = [{**record, "doc_path": row["filing"]} for record, row in zip(records, rows)]
    if swap_tfns and task.name == "tfns":
        records = [{**record, "target": TFNS_CORRECTION.get(record["target"], record["target"])} for record in records]
    return [{key: record[key] for key in ("context", "target", "doc_path") if key in record} for record in records]
