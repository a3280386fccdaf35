"""Data sets in local files: <local_dir>/<task>/{train,test}.{jsonl,csv,parquet}.

A file holds either rows in the data set's own schema (the columns `Task.fields` names) or
records already in FinLoRA's {"context", "target"} form.
"""

from __future__ import annotations

from pathlib import Path

from finlora.errors import FinloraError
from finlora.files import read_jsonl
from finlora.tasks import Task

SUFFIXES = (".jsonl", ".csv", ".parquet")


def load(task: Task, local_dir: Path) -> dict[str, list[dict]]:
    return {split: read_rows(find_file(local_dir / task.name, split)) for split in ("train", "test")}


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
        raise FinloraError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
    return frame.to_dict(orient="records")
