"""The offline sample data as a source (`data.source: sample`); the generators are finlora.samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finlora import samples
from finlora.sources import Source
from finlora.tasks import Task

if TYPE_CHECKING:
    from finlora.config import DataParams


class SampleSource(Source):
    name = "sample"

    def load(self, task: Task, data: DataParams) -> dict:
        sizes = data.split_sizes(task.name)
        return {**samples.generate(task.name, sizes.train, sizes.test, data.seed),
                "origin": {"generator": "finlora.samples", "seed": data.seed}}

    def provenance(self, origin: dict) -> str:
        return f"{origin['generator']}, seed {origin['seed']}"
