"""Shared-prefix packing: the examples of a micro-batch that share a long prompt prefix (one
filing's questions, FiNER's tag list) go into one row, `[prefix][rest 1][rest 2]...`, so the
prefix's forward and backward run once instead of once per example.

Under the row's attention mask each rest sees the prefix and itself only, and its position ids
continue from the prefix's end as if it followed the prefix alone, so every token's hidden state,
and so the loss and its gradients, are those of the examples unpacked (to float rounding; tested).
The answer positions of each example are mapped into its row; the loss normalisation is unchanged.
"""

from __future__ import annotations

import torch

from finlora.batching import IGNORE, Encoded, collate
from finlora.prompts import common_prefix_length

MIN_PREFIX = 64  # tokens: a shorter shared prefix saves less than a packed row's mask costs
PREFIX, PADDING = -1, -2  # what a row's slot holds, beside the index of the example whose rest it is


def prefix_groups(examples: list[Encoded], min_prefix: int = MIN_PREFIX) -> list[tuple[list[int], int]]:
    """(example indices, shared prefix length) per row: neighbours in token order whose inputs share
    at least `min_prefix` tokens go together; every other example is a row of its own."""
    inputs = [example.input_ids[:-1] for example in examples]
    order = sorted(range(len(examples)), key=lambda i: inputs[i])
    groups: list[tuple[list[int], int]] = []
    for previous, index in zip([None, *order], order):
        shared = common_prefix_length(inputs[previous], inputs[index]) if previous is not None else 0
        if groups and shared >= min_prefix:
            rows, prefix = groups[-1]
            groups[-1] = (rows + [index], min(prefix, shared))
        else:
            groups.append(([index], len(inputs[index])))
    return [(sorted(rows), prefix) for rows, prefix in groups]


def collate_packed(examples: list[Encoded], pad_id: int, min_prefix: int = MIN_PREFIX) -> dict[str, torch.Tensor]:
    """`batching.collate`'s batch with prefix-sharing examples packed into one row each, plus the
    rows' position ids and boolean attention mask (batch, 1, width, width; True: may attend). With
    nothing to pack, the plain batch: no mask, so attention keeps its causal kernel."""
    groups = prefix_groups(examples, min_prefix)
    if all(len(indices) == 1 for indices, _ in groups):
        return collate(examples, pad_id)
    rows = [_row(examples, indices, prefix) for indices, prefix in groups]
    width = max(len(tokens) for tokens, _, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    owners = torch.full((len(rows), width), PADDING, dtype=torch.long)
    answer_positions, answer_targets = [], []
    for row, (tokens, row_positions, row_owners, answers) in enumerate(rows):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        positions[row, :len(tokens)] = torch.tensor(row_positions)
        owners[row, :len(tokens)] = torch.tensor(row_owners)
        answer_positions += [row * width + slot for slot, _ in answers]
        answer_targets += [target for _, target in answers]
    return {"input_ids": ids, "position_ids": positions, "attention_mask": packed_mask(owners),
            "answer_positions": torch.tensor(answer_positions, dtype=torch.long),
            "answer_targets": torch.tensor(answer_targets, dtype=torch.long)}


def _row(examples: list[Encoded], indices: list[int], prefix: int):
    """One row's tokens, position ids, slot owners and (slot, target) answers, in example order."""
    first = examples[indices[0]].input_ids[:-1]
    tokens, positions, owners = list(first[:prefix]), list(range(prefix)), [PREFIX] * prefix
    answers = []
    for index in indices:
        inputs, targets = examples[index].input_ids[:-1], examples[index].labels[1:]
        start = len(tokens)
        tokens += inputs[prefix:]
        positions += range(prefix, len(inputs))
        owners += [index] * (len(inputs) - prefix)
        answers += [(column if column < prefix else start + column - prefix, target)
                    for column, target in enumerate(targets) if target != IGNORE]
    return tokens, positions, owners, answers


def packed_mask(owners: torch.Tensor) -> torch.Tensor:
    """Causal attention within the prefix and within each rest, every rest to the whole prefix;
    padding attends to padding (never to a token, and never to nothing, which would give NaN)."""
    slots = torch.arange(owners.shape[1])
    causal = slots[None, :] <= slots[:, None]
    query, key = owners[:, :, None], owners[:, None, :]
    return (causal & ((query == key) | ((key == PREFIX) & (query != PADDING))))[:, None]


def row_lengths(examples: list[Encoded]) -> list[int]:
    """The rows `collate_packed` makes of `examples`, by their tokens: each prefix counted once."""
    return [len(examples[group[0]].input_ids) - 1 + sum(len(examples[i].input_ids) - 1 - prefix for i in group[1:])
            for group, prefix in prefix_groups(examples)]


def supported(model) -> bool:
    """Whether the model's attention takes a packed row's 4D mask (PyTorch's SDPA does; FlashAttention
    and other kernels that take only causal or padding masks do not)."""
    return model.config._attn_implementation == "sdpa"
