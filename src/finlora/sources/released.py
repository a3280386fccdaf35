"""FinLoRA's released data files, read unchanged (`data.source: finlora`).

FinLoRA's repository published its prepared data as JSON lines, `{"context", "target"}` records
(plus `doc_path` for XBRL extraction), and renamed and regrouped the files several times after the
paper. RELEASES names each release's file of every task; a folder is read by looking for each
task's files newest release first, so a clone of any release, or a folder mixing them, loads.
`data.local_dir` is that data folder, or the repository above it.

- One train file can hold several tasks (the four sentiment tasks; XBRL tags, values and
  formulas): each record's task is read from the file as FinLoRA wrote it (`finlora.sources.
  combined`), whatever the group asks for; a record whose task the file does not tell is left out
  and counted, and a task none of whose records can be told trains on a carved part of its test
  file. source.json counts all of it.
- A task without a train file (a folder of test files only, such as the development share of
  FinLoRA's test files) trains on a seeded part of its test file, carved off and never tested on.
- The paper's release kept no test file for the classification tasks: FinLoRA's code read them
  from their Hub data sets, and so does this source (`finlora.sources.hub`).
- FinLoRA's TFNS files from 2025-04 on swap two labels (SWAPPED_TFNS); `data.tfns_labels` says
  whether to read them corrected (the Hub set's meaning, as the paper's Table 3 was scored) or
  as published. Only TFNS's own records are corrected: in the shared file, those read as TFNS's.

Each record is checked where its file and line are known; a bad one stops the stage naming them,
or with `data.on_bad_record: skip` is skipped and counted. A file that is not JSON lines (a Git
LFS pointer above all) is refused in one line before any task loads (`check_files`).
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finlora.answers import released_record
from finlora.errors import FinloraError
from finlora.files import check_is_jsonl, read_jsonl
from finlora.released import tag_names
from finlora.sources import Source, combined
from finlora.tasks import Task

if TYPE_CHECKING:
    from finlora.config import DataParams, Params

SENTIMENT = ("fpb", "fiqa", "tfns", "nwgi")
XBRL = ("xbrl_tags", "xbrl_value", "xbrl_formula")
LATER = ("formula", "xbrl_term", "financebench")  # FinLoRA's later benchmark's own files


@dataclass(frozen=True)
class Release:
    """One release's files, as paths under FinLoRA's data/ folder. A task missing from `test` was
    tested on its Hub data set."""

    name: str  # the month it appeared
    commits: str
    train: dict[str, str]
    test: dict[str, str]


def _each(tasks: tuple[str, ...], path: str) -> dict[str, str]:
    return dict.fromkeys(tasks, path)


def _own(tasks: tuple[str, ...], split: str) -> dict[str, str]:
    return {task: f"{split}/{task}_{split}.jsonl" for task in tasks}


PAPER_TRAIN = {**_each(SENTIMENT, "train/fingpt_sentiment_train.jsonl"), "headline": "train/fingpt_headline_train.jsonl",
               "ner": "train/fingpt_ner_cls_train.jsonl", "finer": "train/finer_train.jsonl"}
PAPER_XBRL_TEST = {"xbrl_tags": "xbrl/xbrl_xbrl_tags_test.jsonl", "xbrl_value": "xbrl/xbrl_value_test.jsonl"}
APRIL_TRAIN = {**_each(SENTIMENT, "train/finlora_sentiment_train.jsonl"), **_own(("headline", "ner"), "train"),
               "finer": "train/finer_train_batched.jsonl"}
APRIL_TEST = {**_own(SENTIMENT + ("headline", "ner"), "test"), "finer": "test/finer_test_batched.jsonl",
              "fnxl": "test/fnxl_test_batched.jsonl"}

RELEASES = (  # newest first
    Release("2025-05", "7dfd9b7 to 7e1cf82 (today's)",
            {**APRIL_TRAIN, **_each(XBRL, "train/xbrl_extract_train.jsonl"), **_own(LATER, "train")},
            {**APRIL_TEST, **{task: f"test/xbrl_extract_{task[5:]}_test.jsonl" for task in XBRL}, **_own(LATER, "test")}),
    Release("2025-04", "03d71d8", {**APRIL_TRAIN, **_each(XBRL, "train/xbrl_train.jsonl")},
            {**APRIL_TEST, "xbrl_tags": "test/xbrl_xbrl_tags_test.jsonl", "xbrl_value": "test/xbrl_value_test.jsonl",
             "xbrl_formula": "test/xbrl_formula_test.jsonl"}),
    Release("2025-02", "e0dac06", {**PAPER_TRAIN, "finer": "train/finer_train_batched.jsonl"},
            {"finer": "test/finer_test_batched.jsonl", "fnxl": "test/fnxl_test_batched.jsonl", **PAPER_XBRL_TEST}),
    Release("2025-01", "6993ea9 (the paper's)", PAPER_TRAIN, {"finer": "test/finer_test.jsonl", **PAPER_XBRL_TEST}),
)

# Files that hold several tasks: every train file more than one task of a release names.
SHARED = {path for release in RELEASES for path, n in Counter(release.train.values()).items() if n > 1}
SHARED_SENTIMENT = {release.train[task] for release in RELEASES for task in SENTIMENT if task in release.train}

# FinLoRA's processing script from 2025-04 on maps TFNS's ids with FPB's map, so these files call
# bullish tweets "neutral" and neutral ones "positive" (in the shared file: its tweet records).
SWAPPED_TFNS = {"test/tfns_test.jsonl", "train/finlora_sentiment_train.jsonl"}
TFNS_CORRECTION = {"neutral": "positive", "positive": "neutral"}


def data_folder(local_dir: Path) -> Path:
    """`local_dir` itself when it holds train/ or test/, else its data/ folder (a FinLoRA clone)."""
    for folder in (local_dir, local_dir / "data"):
        if (folder / "test").is_dir() or (folder / "train").is_dir():
            return folder
    raise FinloraError(f"{local_dir}: no FinLoRA data folder (test/ or data/test/) here",
                       hint="set data.local_dir to a FinLoRA clone or its data/ folder")


@dataclass(frozen=True)
class Found:
    path: Path
    name: str  # as RELEASES names it, e.g. "train/finlora_sentiment_train.jsonl"
    releases: frozenset[str]  # those whose layout has this file for the task


def find(folder: Path, task: str, split: str) -> Found | None:
    """The task's file of `split`, from the newest release that has it here."""
    for release in RELEASES:
        name = getattr(release, split).get(task)
        if name and (folder / name).is_file():
            return Found(folder / name, name, frozenset(r.name for r in RELEASES if getattr(r, split).get(task) == name))
    return None


def expected(task: str, split: str) -> str:
    names = dict.fromkeys(getattr(release, split)[task] for release in RELEASES if task in getattr(release, split))
    return " or ".join(names)


def check_files(params: Params) -> None:
    """Every file the configured tasks will read is JSON lines (not a Git LFS pointer, not a web
    page): checked before any task loads, so a bad file stops the run in one line at its start."""
    folder = data_folder(Path(params.data.local_dir))
    for tasks in params.tasks.values():
        for task in tasks:
            for split in ("train", "test"):
                if found := find(folder, task, split):
                    check_is_jsonl(found.path)


def load(task: Task, data: DataParams) -> dict:
    """{"splits", "tag_names", "origin"} for `finlora.sources.RawData`: the task's records, checked."""
    folder = data_folder(Path(data.local_dir))
    train_file, test_file = find(folder, task.name, "train"), find(folder, task.name, "test")
    if train_file is None and test_file is None:
        raise FinloraError(f"{folder}: no file of task {task.name}",
                           hint=f"FinLoRA names its test file {expected(task.name, 'test')} and its train file "
                           f"{expected(task.name, 'train')}")
    reader = Reader(task, data)
    origin: dict = {}
    if test_file is not None:
        test = reader.read(test_file)
        origin["test_file"] = test_file.name
    elif task.hub is not None:  # the paper's release: FinLoRA's code tested on the Hub data set
        from finlora.sources import hub

        try:
            from_hub = hub.load(task, data.seed)
        except FinloraError as error:
            raise FinloraError(f"{folder}: no test file of task {task.name} (FinLoRA's paper release tested it on "
                               f"its Hub data set, read from there): {error.args[0]}", hint=error.hint) from None
        test = from_hub["splits"]["test"]
        origin["test_file"] = None
        origin["test_from_hub"] = from_hub["origin"]
    else:
        raise FinloraError(f"{folder}: no test file of task {task.name}",
                           hint=f"FinLoRA names it {expected(task.name, 'test')}")
    if train_file is None:
        train, test = carve(test, data.carved_test_fraction, data.seed)
        origin.update(train_file=None, carved=f"no train file: {len(train)} of the test file's records "
                      f"train, {len(test)} test")
    else:
        train = reader.read(train_file)
        origin["train_file"] = train_file.name
        if not train:  # a shared file none of whose records could be told to be this task's
            train, test = carve(test, data.carved_test_fraction, data.seed)
            origin["carved"] = (f"none of {train_file.name}'s records told to be {task.name}'s: {len(train)} of "
                                f"the test file's records train, {len(test)} test")
    origin["release"] = sorted(frozenset.intersection(*(found.releases for found in (train_file, test_file) if found)))
    loaded = {"splits": {"train": train, "test": test}, "origin": {**origin, **reader.counts()}}
    if task.lists_tag_names:
        loaded["tag_names"] = tag_names(train + test)
    return loaded


@functools.lru_cache(maxsize=8)
def _attributed(path: Path, stamp: tuple[int, int]) -> tuple[list[dict], combined.Attribution]:
    rows = list(read_jsonl(path))
    sentiment = path.name in {name.split("/")[-1] for name in SHARED_SENTIMENT}
    return rows, (combined.read_sentiment if sentiment else combined.read_xbrl)(rows)


def attributed(found: Found) -> tuple[list[dict], combined.Attribution]:
    """A shared file's records and each one's task, read once per process (every task of a group
    reads the same file)."""
    stat = found.path.stat()
    return _attributed(found.path, (stat.st_mtime_ns, stat.st_size))


class Reader:
    """Reads a task's files, checking each record and keeping count of what it leaves out."""

    def __init__(self, task: Task, data: DataParams):
        self.task, self.data = task, data
        self.skipped: Counter[str] = Counter()
        self.shared: dict[str, dict] = {}
        self.tfns_corrected: dict[str, int] = {}  # task -> labels corrected (0: a swapped file read, none of TFNS's)

    def read(self, found: Found) -> list[dict]:
        """The task's records of one file; of a shared file, those read as the task's (possibly
        none: the caller decides)."""
        records = []
        shared = found.name in SHARED
        rows, attribution = attributed(found) if shared else (read_jsonl(found.path), None)
        for line, row in enumerate(rows, start=1):
            if attribution and attribution.tasks[line - 1] != self.task.name:
                continue
            row = self.corrected(row, found)
            try:
                released_record(self.task, row)
            except FinloraError as error:
                if self.data.on_bad_record == "error":
                    raise FinloraError(f"{found.path}:{line}: {error.args[0]}", hint=error.hint
                                       or "set data.on_bad_record: skip to skip and count such records") from None
                self.skipped[found.path.name] += 1
                continue
            records.append(row)
        if attribution:
            self.shared[found.name] = {**attribution.summary(), "taken": len(records)}
        elif not records:
            raise FinloraError(f"{found.path}: no usable {self.task.name} record")
        if self.data.tfns_labels == "corrected" and found.name in SWAPPED_TFNS:
            self.tfns_corrected.setdefault(self.task.name, 0)
        return records

    def corrected(self, row: dict, found: Found) -> dict:
        """TFNS's records with the Hub set's meaning restored (data.tfns_labels: corrected): only
        the task's own records are read, so in a shared file only those read as TFNS's."""
        if self.data.tfns_labels != "corrected" or found.name not in SWAPPED_TFNS or self.task.name != "tfns":
            return row
        target = str(row.get("target", "")).strip().lower()
        if target not in TFNS_CORRECTION:
            return row
        self.tfns_corrected[self.task.name] = self.tfns_corrected.get(self.task.name, 0) + 1
        return {**row, "target": TFNS_CORRECTION[target]}

    def counts(self) -> dict:
        counts: dict = {"skipped_bad_records": dict(self.skipped)}
        if self.shared:
            counts["shared_file"] = self.shared
        if self.tfns_corrected:
            counts["tfns_labels_corrected"] = self.tfns_corrected.get(self.task.name, 0)
        return counts


def carve(records: list[dict], test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test): a seeded share of the records for testing, the rest for training, each in
    file order."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(records) * test_fraction))
    test = set(order[:n_test])
    return ([r for i, r in enumerate(records) if i not in test], [r for i, r in enumerate(records) if i in test])


class FinloraSource(Source):
    name = "finlora"

    def check(self, params: Params) -> None:
        check_files(params)

    def load(self, task: Task, data: DataParams) -> dict:
        loaded = load(task, data)
        return {**loaded, "origin": {"folder": data.local_dir, **loaded["origin"]}}

    def provenance(self, origin: dict) -> str:
        """Which of FinLoRA's files, of which release, and what was made of them."""
        files = [name for name in (origin.get("train_file"), origin.get("test_file")) if name]
        notes = [f"release {' or '.join(origin['release'])}"] if origin.get("release") else []
        if origin.get("test_from_hub"):
            notes.append(f"tested on {origin['test_from_hub']['dataset']} from the Hub, as the paper's code did")
        if origin.get("carved"):
            notes.append(origin["carved"])
        for name, read in origin.get("shared_file", {}).items():
            notes.append(shared_file_note(name, read))
        if origin.get("tfns_labels_corrected"):
            notes.append(f"{origin['tfns_labels_corrected']} TFNS labels corrected to the Hub set's meaning")
        return f"FinLoRA files {' + '.join(files)} in {origin['folder']}" + "".join(f"; {note}" for note in notes)


def shared_file_note(name: str, read: dict) -> str:
    """How a shared file was read, in one clause: the report's provenance and download's line."""
    records = ", ".join(f"{task} {n}" + (f" (written {read['written'][task]} times)" if task in read.get("written", {})
                                          else "") for task, n in read["records"].items())
    note = f"{name} read by {read['read by']}: {records or 'no task told'}; {read['taken']} taken"
    untold = read.get("not told apart", {})
    if untold:
        note += f"; {sum(untold.values())} not told apart and left out (" + "; ".join(
            f"{n} {why}" for why, n in untold.items()) + ")"
    return note
