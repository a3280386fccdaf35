"""Where raw data comes from (`data.source`): one object per source, with one interface.

- `sample`: generated offline (sources/sample*.py)
- `hub`: the public data sets on the Hugging Face Hub (sources/hub.py)
- `local`: files under data.local_dir (sources/local.py)
- `finlora`: FinLoRA's released files, any release (sources/released.py)

A source checks what it needs before any work (`check`), loads a task's rows (`load`: splits,
and where a kind of answer needs them, tag names and filings) with where exactly they came from,
and names that origin in one line for the report (`provenance`), which download records in
source.json beside the rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from finlora.config import DataParams
from finlora.errors import FinloraError
from finlora.tasks import Task

if TYPE_CHECKING:
    from finlora.config import Params


class Source:
    name = ""

    def check(self, params: Params) -> None:
        """Refuse, before any task loads, what cannot work (nothing to check by default)."""

    def load(self, task: Task, data: DataParams) -> dict:
        """{"splits", "tag_names", "filings", "origin"} (the last three where there are any)."""
        raise NotImplementedError

    def provenance(self, origin: dict) -> str:
        """Where the rows came from, in one line (the report's provenance table)."""
        raise NotImplementedError


@dataclass
class RawData:
    """A task's raw rows per split, plus what some families need beside them."""

    splits: dict[str, list[dict]]
    tag_names: list[str] | None = None  # FiNER: entity types, from the data set's ClassLabel names
    filings: dict[str, bytes] = field(default_factory=dict)  # XBRL: file name -> instance document
    origin: dict = field(default_factory=dict)  # where exactly the rows came from, for source.json


def fetch(task: Task, data: DataParams) -> RawData:
    """Raw train/test rows for `task`, capped at the configured sizes (seeded sample)."""
    sizes = data.split_sizes(task.name)
    raw = RawData(**source_of(data).load(task, data))
    for split, rows in raw.splits.items():
        if not rows:
            raise FinloraError(f"task {task.name}: the {split} split from source '{data.source}' is empty")
    raw.splits = {"train": subsample(raw.splits["train"], sizes.train, data.seed),
                  "test": subsample(raw.splits["test"], sizes.test, data.seed)}
    if raw.filings:  # keep the filings the sampled questions ask about
        used = {row.get("filing") for rows in raw.splits.values() for row in rows}
        raw.filings = {name: text for name, text in raw.filings.items() if name in used}
    return raw


def subsample(rows: list[dict], size: int, seed: int) -> list[dict]:
    """At most `size` rows, chosen with `seed`, kept in their original order."""
    if len(rows) <= size:
        return rows
    chosen = sorted(random.Random(seed).sample(range(len(rows)), size))
    return [rows[i] for i in chosen]


def describe(task: Task, data: DataParams, raw: RawData) -> dict:
    """Provenance recorded next to the raw data, with its one-line description."""
    return {"task": task.name, "source": data.source, **raw.origin,
            "provenance": source_of(data).provenance(raw.origin)}


def source_of(data: DataParams) -> Source:
    from finlora.sources import hub, local, released, sample

    sources = {"sample": sample.SampleSource(), "hub": hub.HubSource(), "local": local.LocalSource(),
               "finlora": released.FinloraSource()}
    return sources[data.source]
