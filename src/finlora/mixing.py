"""How a multi-task group draws its training examples from its tasks (`train.sampling`).

One epoch holds as many examples as the group's tasks have together; the policy decides each
task's share of them:
  proportional  each task by its size: every example once (a small task is seen little)
  balanced      every task the same share
  temperature   shares proportional to size ** (1 / train.sampling_temperature): 1 is
                proportional, larger values move towards balanced
A task whose share exceeds its size repeats its examples (each within one of the others' count);
a smaller share takes a seeded subset.

Before mixing, `hold_out` sets aside a seeded share of each task's examples for validation
(`train.validation_fraction`): training never sees them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finlora.config import TrainParams


def shares(sizes: dict[str, int], policy: str, temperature: float) -> dict[str, int]:
    """Examples per task in one epoch, adding up to the sum of `sizes` (largest remainders)."""
    weights = {task: {"proportional": size, "balanced": 1.0}.get(policy, size ** (1 / temperature))
               for task, size in sizes.items()}
    total, weight_sum = sum(sizes.values()), sum(weights.values())
    exact = {task: total * weight / weight_sum for task, weight in weights.items()}
    counts = {task: int(value) for task, value in exact.items()}
    by_remainder = sorted(exact, key=lambda task: exact[task] - counts[task], reverse=True)
    for task in by_remainder[:total - sum(counts.values())]:
        counts[task] += 1
    return counts


def mix(by_task: dict[str, list[dict]], policy: str, temperature: float, seed: int) -> list[dict]:
    """The group's training examples, each task drawn to its share (task order; training shuffles)."""
    counts = shares({task: len(records) for task, records in by_task.items()}, policy, temperature)
    mixed = []
    for task, records in by_task.items():
        order = list(range(len(records)))
        random.Random(f"{seed}-{task}").shuffle(order)
        mixed += [records[order[i % len(order)]] for i in range(counts[task])]
    return mixed


def training_examples(by_task: dict[str, list[dict]], train: TrainParams) -> tuple[list[dict], list[dict]]:
    """A group's training examples as `train` (one seed's settings) draws them, and the validation
    examples it holds out first."""
    by_task, validation = hold_out(by_task, train.validation_fraction, train.seed)
    return mix(by_task, train.sampling, train.sampling_temperature, train.seed), validation


def hold_out(by_task: dict[str, list[dict]], fraction: float, seed: int) -> tuple[dict[str, list[dict]], list[dict]]:
    """Each task's examples split into training and validation: a seeded `fraction` of them, at
    least one where the fraction is above 0 and the task has two or more examples."""
    training, validation = {}, []
    for task, records in by_task.items():
        order = list(range(len(records)))
        random.Random(f"{seed}-{task}-validation").shuffle(order)
        held = max(1, round(fraction * len(records))) if fraction > 0 and len(records) > 1 else 0
        validation += [records[i] for i in sorted(order[:held])]
        training[task] = [records[i] for i in sorted(order[held:])]
    return training, validation
