"""FinLoRA's released data files, read unchanged (`data.source: finlora`).

FinLoRA's repository publishes its prepared data as JSON lines under data/train/ and data/test/,
one file per task and split (`Task.released` names them): `{"context", "target"}` records, plus
`doc_path` for XBRL extraction. `data.local_dir` is that data folder, or the repository above it.
Each record is checked here, where its file and line are known; a bad one stops the stage naming
them, or with `data.on_bad_record: skip` is skipped and counted.

A task whose train file is absent (a folder of test files only, such as a share of FinLoRA's test
files kept for development) trains on a seeded part of its test file, carved off and never tested on.
"""

from __future__ import annotations

import random
from pathlib import Path

from finlora.errors import FinloraError
from finlora.files import read_jsonl
from finlora.answers import kind, released_record
from finlora.released import tag_names
from finlora.tasks import Task


def data_folder(local_dir: Path) -> Path:
    """`local_dir` itself when it holds train/ or test/, else its data/ folder (a FinLoRA clone)."""
    for folder in (local_dir, local_dir / "data"):
        if (folder / "test").is_dir() or (folder / "train").is_dir():
            return folder
    raise FinloraError(f"{local_dir}: no FinLoRA data folder (test/ or data/test/) here",
                       hint="set data.local_dir to a FinLoRA clone or its data/ folder")


def find(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def load(task: Task, local_dir: Path, seed: int, test_fraction: float, on_bad_record: str) -> dict:
    """{"splits", "tag_names", "origin"} for `finlora.sources.RawData`: the task's records, checked."""
    folder = data_folder(local_dir)
    test_file = find(folder / "test", task.released.test)
    if test_file is None:
        raise FinloraError(f"{folder / 'test'}: no test file of task {task.name}",
                           hint=f"FinLoRA names it {' or '.join(task.released.test)}")
    train_file = find(folder / "train", task.released.train)
    skipped: dict[str, int] = {}
    test = read_records(task, test_file, on_bad_record, skipped)
    if train_file is None:
        train, test = carve(test, test_fraction, seed)
        origin = {"test_file": str(test_file), "train_file": None,
                  "carved": f"no train file: {len(train)} of the test file's records train, {len(test)} test"}
    else:
        shared = train_file.name in task.released.shared
        train = read_records(task, train_file, on_bad_record, skipped, other_tasks_inside=shared)
        origin = {"test_file": str(test_file), "train_file": str(train_file)}
    loaded = {"splits": {"train": train, "test": test}, "origin": {**origin, "skipped_bad_records": skipped}}
    if kind(task).needs_tag_names:
        loaded["tag_names"] = tag_names(train + test)
    return loaded


def read_records(task: Task, path: Path, on_bad_record: str, skipped: dict[str, int],
                 other_tasks_inside: bool = False) -> list[dict]:
    """The records of one file as they are. In a file several tasks share, a record whose target
    does not fit this task belongs to another task and is left out without a word."""
    records = []
    for line, row in enumerate(read_jsonl(path), start=1):
        try:
            released_record(task, row)
        except FinloraError as error:
            if other_tasks_inside:
                continue
            if on_bad_record == "error":
                raise FinloraError(f"{path}:{line}: {error.args[0]}", hint=error.hint
                                   or "set data.on_bad_record: skip to skip and count such records") from None
            skipped[path.name] = skipped.get(path.name, 0) + 1
            continue
        records.append(row)
    if not records:
        raise FinloraError(f"{path}: no usable {task.name} record")
    return records


def carve(records: list[dict], test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test): a seeded share of the records for testing, the rest for training, each in
    file order."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(records) * test_fraction))
    test = set(order[:n_test])
    return ([r for i, r in enumerate(records) if i not in test], [r for i, r in enumerate(records) if i in test])
