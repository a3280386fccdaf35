"""Training data as the loop consumes it: records tokenised (too-long ones dropped and counted),
grouped by length into micro-batches laid out over ranks and accumulation steps, and collated
with the answer tokens' places."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from finlora.prompts import training_ids

if TYPE_CHECKING:
    from finlora.config import Params

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode(tokenizer, records: list[dict], max_seq_len: int, chat_template: bool) -> tuple[list[Encoded], int]:
    """Tokenise records; ones longer than `max_seq_len` are dropped and counted, never cut."""
    encoded, dropped = [], 0
    for record in records:
        ids, labels = training_ids(tokenizer, record["context"], record["target"], chat_template)
        if len(ids) > max_seq_len:
            dropped += 1
            continue
        encoded.append(Encoded(ids, labels))
    return encoded, dropped


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, keys: list | None = None) -> list[list[int]]:
    """Shuffle, then sort within windows of 32 batches so a batch holds similar lengths (little
    padding), then shuffle the batch order so training does not see short-to-long. With `keys`
    (the token lists, for shared-prefix packing), windows are sorted by them instead, so examples
    that share a prefix land in one batch."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i] if keys is None else keys[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """A right-padded batch, with the answer tokens' places in the flattened batch and their ids.

    Every token of each example but the last is input (the last, the end token, is a target only:
    as an input, its prediction would be computed and thrown away). There is no attention mask:
    in a causal model a token attends only to those before it, so no real token sees the padding
    after it, and only real positions are read. Without a mask, attention takes its causal kernel
    for every batch and transformers reads no mask back from the GPU (a wait for the device); the
    answer positions are worked out here on the host for the same reason."""
    width = max(len(e.input_ids) for e in examples) - 1
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    positions, targets = [], []
    for row, example in enumerate(examples):
        ids[row, :len(example.input_ids) - 1] = torch.tensor(example.input_ids[:-1])
        for column, target in enumerate(example.labels[1:]):  # the token that follows each input
            if target != IGNORE:
                positions.append(row * width + column)
                targets.append(target)
    return {"input_ids": ids, "answer_positions": torch.tensor(positions, dtype=torch.long),
            "answer_targets": torch.tensor(targets, dtype=torch.long)}


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on `device`, without the host waiting for the copy (CUDA stages it)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def answer_tokens(example: Encoded) -> int:
    return sum(label != IGNORE for label in example.labels[1:])


def micro_batches(encoded: list[Encoded], params: Params, world: int) -> list[list[list[int]]]:
    """Every micro-batch of the run, as the example indices of each rank: rank r of a global
    batch takes its examples r, r + world, ... so any world size sees the same global batches."""
    lengths = [len(e.input_ids) for e in encoded]
    keys = [e.input_ids for e in encoded] if params.train.prefix_packing else None
    steps = []
    for epoch in range(params.train.epochs):
        global_batches = length_grouped_batches(lengths, params.train.batch_size * world, params.train.seed + epoch,
                                                keys)
        steps += [[batch[rank::world] for rank in range(world)] for batch in global_batches
                  if len(batch) == params.train.batch_size * world]
    return steps


def padding_efficiency(encoded: list[Encoded], steps: list[list[list[int]]]) -> float:
    """The share of the whole schedule's input positions (every micro-batch of every rank, padded
    to its longest row) that are tokens, not padding. A property of the schedule, so a run resumed
    from a checkpoint reports what an uninterrupted one does."""
    real = padded = 0
    for micro in steps:
        for indices in micro:
            rows = [len(encoded[i].input_ids) - 1 for i in indices]
            real += sum(rows)
            padded += len(rows) * max(rows, default=0)
    return round(real / max(1, padded), 3)
