"""Where raw data comes from: `sample` (generated offline), `hub` or `local` files."""

from __future__ import annotations

import random
from pathlib import Path

from finlora.config import DataParams
from finlora.errors import FinloraError
from finlora.sources import hub, local, sample
from finlora.tasks import Task


def fetch(task: Task, data: DataParams) -> dict[str, list[dict]]:
    """Raw train/test rows for `task`, capped at the configured sizes (seeded sample)."""
    sizes = data.split_sizes(task.name)
    if data.source == "sample":
        return sample.generate(task.name, sizes.train, sizes.test, data.seed)
    splits = hub.load(task, data.seed) if data.source == "hub" else local.load(task, Path(data.local_dir))
    for split, rows in splits.items():
        if not rows:
            raise FinloraError(f"task {task.name}: the {split} split from source '{data.source}' is empty")
    return {
        "train": subsample(splits["train"], sizes.train, data.seed),
        "test": subsample(splits["test"], sizes.test, data.seed),
    }


def subsample(rows: list[dict], size: int, seed: int) -> list[dict]:
    """At most `size` rows, chosen with `seed`, kept in their original order."""
    if len(rows) <= size:
        return rows
    chosen = sorted(random.Random(seed).sample(range(len(rows)), size))
    return [rows[i] for i in chosen]


def describe(task: Task, data: DataParams) -> dict:
    """Provenance recorded next to the raw data."""
    if data.source == "hub":
        origin = {"dataset": task.hub.path, "config": task.hub.config, "revision": task.hub.revision,
                  "commit": hub.resolved_commit(task)}
    elif data.source == "local":
        origin = {"folder": str(Path(data.local_dir) / task.name)}
    else:
        origin = {"generator": "finlora.sources.sample", "seed": data.seed}
    return {"task": task.name, "source": data.source, **origin}
