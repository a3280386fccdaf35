"""Data sets in local files: <local_dir>/<task>/{train,test}.{jsonl,csv,parquet}.

A file holds either rows in the data set's own schema (the columns `Task.fields` names) or
records already in FinLoRA's {"context", "target"} form (any task; FiNER's tag names are then read
from its prompts). FiNER rows carry tag names ("B-Revenues");
the tag list is the set of tags the files use. XBRL questions name filings kept in
<local_dir>/<task>/filings/.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from finlora.errors import FinloraError
from finlora.files import read_jsonl
from finlora.released import is_released, tag_names
from finlora.finer import iob_type
from finlora.sources import Source
from finlora.tasks import Task
from finlora.xbrl import filing_path

if TYPE_CHECKING:
    from finlora.config import DataParams

SUFFIXES = (".jsonl", ".csv", ".parquet")


def load(task: Task, local_dir: Path) -> dict:
    """{"splits": ..., "tag_names": ..., "filings": ...} for `finlora.sources.RawData`."""
    folder = local_dir / task.name
    splits = {split: read_rows(find_file(folder, split)) for split in ("train", "test")}
    loaded: dict = {"splits": splits}
    rows = splits["train"] + splits["test"]
    if rows and is_released(rows[0]):  # FinLoRA's prompt records: no filings or token rows behind them
        if task.lists_tag_names:
            loaded["tag_names"] = tag_names(rows)
        return loaded
    if task.lists_tag_names:
        tags = {iob_type(tag) for rows in splits.values() for row in rows for tag in row.get(task.label_field) or []}
        loaded["tag_names"] = sorted(tags - {None})
    if task.reads_filings:
        loaded["filings"] = read_filings(folder / "filings", splits)
    return loaded


def read_filings(folder: Path, splits: dict[str, list[dict]]) -> dict[str, bytes]:
    """The filings the questions name; a missing one is reported with the question that needs it."""
    filings = {}
    for split, rows in splits.items():
        for line, row in enumerate(rows, start=1):
            name = str(row.get("filing", ""))
            if name not in filings:
                path = filing_path(folder, name)
                if path is None:
                    raise FinloraError(f"{folder.parent}/{split}: question {line} names filing {name!r}, "
                                       f"which is not in {folder}/",
                                       hint="put each XBRL instance document the questions name in filings/")
                filings[name] = path.read_bytes()
    return filings


def find_file(folder: Path, split: str) -> Path:
    for suffix in SUFFIXES:
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return path
    raise FinloraError(
        f"{folder}/{split}.*: file not found",
        hint=f"data.source is local: put {split}{'|'.join(SUFFIXES)} in {folder}/",
    )


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    import pandas as pd

    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as error:
        said = " ".join(str(error).split())  # pandas' parser messages end in a newline
        raise FinloraError(f"{path}: cannot read ({type(error).__name__}: {said})") from None
    return frame.to_dict(orient="records")


class LocalSource(Source):
    name = "local"

    def load(self, task: Task, data: DataParams) -> dict:
        return {**load(task, Path(data.local_dir)), "origin": {"folder": str(Path(data.local_dir) / task.name)}}

    def provenance(self, origin: dict) -> str:
        return origin["folder"]
