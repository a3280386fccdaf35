"""Shared-prefix packing: the examples of a micro-batch that share a long prompt prefix (one
filing's questions, FiNER's tag list) run that prefix through the model once, instead of once per
example, and every example's rest continues from the prefix's key/value cache.

A packed micro-batch takes two passes. The prefix pass runs each group's shared prefix, one row a
group, right-padded. The rest pass runs each example's rest, one row an example, over its group's
cached prefix: the attention mask lets a rest see its own prefix (not the padding after a shorter
one) and itself, and its position ids continue from its prefix's end. Every token's hidden state,
so the loss and its gradients (which flow back through the cache into the prefix pass), are those
of the examples unpacked, to float rounding (tested). Unlike one long row with a block mask, no
query attends to another example's rest: the cost stays linear in the examples, and any attention
kernel that takes a padding mask will do.
"""

from __future__ import annotations

import torch

from finlora.batching import IGNORE, Encoded, collate
from finlora.prompts import common_prefix_length
from finlora.runtime import grouped_heads_under_masks

MIN_PREFIX = 64  # tokens: a shorter shared prefix saves less than a second pass costs


def prefix_groups(examples: list[Encoded], min_prefix: int = MIN_PREFIX) -> list[tuple[list[int], int]]:
    """(example indices, shared prefix length) per group: runs of examples in token order, chosen
    to run the fewest positions. A group of n sharing p tokens runs (n - 1) * p fewer than its
    examples alone, so one filing's questions go together, and the next filing's, which share
    only the instruction with them, make a group of their own. A group shares at least
    `min_prefix` tokens, and its prefix ends before its first answer position, so every answer is
    read in the rest pass."""
    inputs = [example.input_ids[:-1] for example in examples]
    order = sorted(range(len(examples)), key=lambda i: inputs[i])
    limits = [_first_answer(examples[i]) for i in order]
    neighbours = [common_prefix_length(inputs[a], inputs[b]) for a, b in zip(order, order[1:])]

    def shared(start: int, end: int) -> int:  # the prefix of the sorted run order[start:end]
        return min(limits[start:end] + neighbours[start:end - 1])

    # saved[end]: the most positions the first `end` examples can save; cut[end]: where its last run starts
    saved, cut = [0] * (len(order) + 1), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        saved[end], cut[end] = saved[end - 1], end - 1  # the last example alone
        for start in range(end - 1):
            prefix = shared(start, end)
            if prefix >= min_prefix and saved[start] + (end - start - 1) * prefix > saved[end]:
                saved[end], cut[end] = saved[start] + (end - start - 1) * prefix, start
    groups, end = [], len(order)
    while end:
        start = cut[end]
        groups.append((sorted(order[start:end]), shared(start, end)))
        end = start
    return groups[::-1]


def _first_answer(example: Encoded) -> int:
    """The first input position whose next token is an answer token (the last input if none is)."""
    targets = example.labels[1:]
    return next((column for column, target in enumerate(targets) if target != IGNORE), len(targets) - 1)


def collate_packed(examples: list[Encoded], pad_id: int, min_prefix: int = MIN_PREFIX) -> dict[str, torch.Tensor]:
    """The two passes' batch: `prefix_ids` (groups, longest prefix), and per example its rest in
    `input_ids`, its group in `prefix_rows`, its `rest_mask` over [prefix slots, rest slots] and its
    `rest_positions`; answer positions index the rest pass's flattened rows. With nothing to pack,
    `batching.collate`'s plain batch."""
    groups = prefix_groups(examples, min_prefix)
    if all(len(indices) == 1 for indices, _ in groups):
        return collate(examples, pad_id)
    prefix_width = max(prefix for _, prefix in groups)
    rests = [(group, prefix, examples[index]) for group, (indices, prefix) in enumerate(groups) for index in indices]
    width = max(len(example.input_ids) - 1 - prefix for _, prefix, example in rests)
    prefix_ids = torch.full((len(groups), prefix_width), pad_id, dtype=torch.long)
    for group, (indices, prefix) in enumerate(groups):
        prefix_ids[group, :prefix] = torch.tensor(examples[indices[0]].input_ids[:prefix])
    ids = torch.full((len(rests), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rests), prefix_width + width), dtype=torch.long)
    positions, answer_positions, answer_targets = [], [], []
    for row, (_, prefix, example) in enumerate(rests):
        rest = example.input_ids[prefix:-1]
        ids[row, :len(rest)] = torch.tensor(rest)
        mask[row, :prefix] = 1
        mask[row, prefix_width:prefix_width + len(rest)] = 1
        positions.append(list(range(prefix, prefix + width)))
        for column, target in enumerate(example.labels[prefix + 1:]):
            if target != IGNORE:
                answer_positions.append(row * width + column)
                answer_targets.append(target)
    return {"input_ids": ids, "prefix_ids": prefix_ids,
            "prefix_rows": torch.tensor([group for group, _, _ in rests], dtype=torch.long),
            "rest_mask": mask, "rest_positions": torch.tensor(positions, dtype=torch.long),
            "answer_positions": torch.tensor(answer_positions, dtype=torch.long),
            "answer_targets": torch.tensor(answer_targets, dtype=torch.long)}


def is_packed(batch: dict[str, torch.Tensor]) -> bool:
    return "prefix_ids" in batch


def packed_hidden_states(decoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The rest pass's last hidden states (examples, rest width, hidden), over the prefix pass's cache."""
    from transformers import DynamicCache

    prefixes = decoder(input_ids=batch["prefix_ids"], use_cache=True).past_key_values
    rows = batch["prefix_rows"]
    cache = DynamicCache(config=decoder.config)
    for layer, cached in enumerate(prefixes.layers):
        if len(batch["prefix_ids"]) == 1:  # one group: every rest reads the same tensors, uncopied
            keys, values = (t.expand(len(rows), -1, -1, -1) for t in (cached.keys, cached.values))
        else:
            keys, values = cached.keys.index_select(0, rows), cached.values.index_select(0, rows)
        cache.update(keys, values, layer)
    with grouped_heads_under_masks(batch["input_ids"].device):
        return decoder(input_ids=batch["input_ids"], attention_mask=batch["rest_mask"],
                       position_ids=batch["rest_positions"], past_key_values=cache, use_cache=True).last_hidden_state


def pass_lengths(examples: list[Encoded]) -> tuple[int, int]:
    """(tokens, padded positions) of the two passes `collate_packed` makes of `examples`."""
    groups = prefix_groups(examples)
    if all(len(indices) == 1 for indices, _ in groups):
        rows = [len(example.input_ids) - 1 for example in examples]
        return sum(rows), len(rows) * max(rows)
    prefixes = [prefix for _, prefix in groups]
    rests = [len(examples[index].input_ids) - 1 - prefix for indices, prefix in groups for index in indices]
    return sum(prefixes) + sum(rests), len(prefixes) * max(prefixes) + len(rests) * max(rests)
