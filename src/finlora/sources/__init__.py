"""Where raw data comes from: `sample` (generated offline), `hub` or `local` files."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from finlora.config import DataParams
from finlora.errors import FinloraError
from finlora.sources import hub, local, released, sample
from finlora.tasks import Task


@dataclass
class RawData:
    """A task's raw rows per split, plus what some families need beside them."""

    splits: dict[str, list[dict]]
    tag_names: list[str] | None = None  # FiNER: entity types, from the data set's ClassLabel names
    filings: dict[str, bytes] = field(default_factory=dict)  # XBRL: file name -> instance document
    origin: dict = field(default_factory=dict)  # where exactly the rows came from, for source.json


def fetch(task: Task, data: DataParams, group: tuple[str, ...] = ()) -> RawData:
    """Raw train/test rows for `task`, capped at the configured sizes (seeded sample). `group`: the
    tasks trained with it, among which a FinLoRA file several tasks share is dealt (default: itself)."""
    sizes = data.split_sizes(task.name)
    if data.source == "sample":
        return RawData(**sample.generate(task.name, sizes.train, sizes.test, data.seed))
    if data.source == "finlora":
        loaded = released.load(task, data, group or (task.name,))
    elif data.source == "hub":
        loaded = hub.load(task, data.seed)
    else:
        loaded = local.load(task, Path(data.local_dir))
    raw = RawData(**loaded)
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
    """Provenance recorded next to the raw data."""
    if data.source in ("finlora", "hub"):
        origin = {"folder": data.local_dir, **raw.origin} if data.source == "finlora" else raw.origin
    elif data.source == "local":
        origin = {"folder": str(Path(data.local_dir) / task.name)}
    else:
        origin = {"generator": "finlora.sources.sample", "seed": data.seed}
    return {"task": task.name, "source": data.source, **origin}
