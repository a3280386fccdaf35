"""The base model's in-context baseline: k solved examples from a task's train split before each of
its test prompts (stage evaluate_few_shot@<group>-<k>, params `few_shot`).

The examples are drawn once per task and seed and are the same for every test prompt (the prefix
they make is computed once, eval.prefix_cache). Where the task has labels the draw is balanced:
the labels take turns, in a seeded order, each label's records in a seeded order. The k-shot
examples are the first k of that one draw, so the 1-shot example is among the 3-shot ones, and
those among the 5-shot ones. A train record whose prompt is also a test prompt is never drawn.

A shot is its prompt followed by its answer and a blank line, as the model is trained to answer:

    <train prompt 1><answer 1>

    <train prompt 2><answer 2>

    <test prompt>
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from finlora.errors import FinloraError
from finlora.tasks import Task

SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Shots:
    task: str
    seed: int
    examples: list[dict]  # the train records shown, in prompt order
    lines: list[int]  # their line numbers in the task's prepared train.jsonl, from 1

    def prompt(self, context: str) -> str:
        return "".join(f"{shot['context']}{shot['target']}{SEPARATOR}" for shot in self.examples) + context

    def summary(self) -> dict:
        return {"k": len(self.examples), "seed": self.seed, "train_lines": self.lines}


def draw_order(task: Task, train: list[dict], test: list[dict], seed: int) -> list[int]:
    """Indices into `train`, in the order shots are taken (see the module's docstring)."""
    test_prompts = {record["context"] for record in test}
    pool = [i for i, record in enumerate(train) if record["context"] not in test_prompts]
    rng = random.Random(f"few-shot {task.name} {seed}")
    if not task.labels:
        return rng.sample(pool, len(pool))
    by_label = {label: [i for i in pool if train[i].get("label", train[i]["target"]) == label] for label in task.labels}
    for indices in by_label.values():
        rng.shuffle(indices)
    turns = [label for label in task.labels if by_label[label]]
    rng.shuffle(turns)
    longest = max((len(by_label[label]) for label in turns), default=0)
    return [by_label[label][turn] for turn in range(longest) for label in turns if turn < len(by_label[label])]


def choose(task: Task, train: list[dict], test: list[dict], k: int, seed: int) -> Shots:
    order = draw_order(task, train, test, seed)
    if len(order) < k:
        raise FinloraError(f"few_shot.shots {k}: task {task.name} has {len(order)} train records to show "
                           "(a train prompt that is also a test prompt is never shown)",
                           hint="lower few_shot.shots or raise data.train_size")
    chosen = order[:k]
    return Shots(task.name, seed, [train[i] for i in chosen], [i + 1 for i in chosen])
