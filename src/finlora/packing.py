"""Shared-prefix packing: the examples of a micro-batch that share a long prompt prefix (one
filing's questions, FiNER's tag list) run that prefix through the model once, instead of once per
example, and every example's rest continues from the prefix's key/value cache.

A micro-batch is split into prefix groups, and each group takes its own forward and backward
pass, so the micro-batch's peak memory is its largest group's, not that of all its filings at
once. A group's pass runs its shared prefix as one row, then its examples' rests over the prefix's
cache, two of like length to a call, position ids continuing from the prefix's end, and takes a
call's gradients before the next call runs, so it holds one call's graph at a time. A call's rests
are right-padded to the longer of the two, never across a whole group: on FiNER's prompts, rests
of 261 to 603 tokens padded to the longest cost an eighth of the pass's time and a third of its
peak memory (bench/RESULTS.md). Every token's hidden state, so the loss and its gradients (which
flow back through the cache into the prefix), are those of the examples unpacked, to float
rounding (tested). No query attends to another example's rest, so the cost stays linear in the
examples. An example that shares no long prefix is a group of its own."""

from __future__ import annotations

import torch

from finlora.batching import IGNORE, Encoded, collate
from finlora.prompts import common_prefix_length
from finlora.runtime import grouped_heads_under_masks

MIN_PREFIX = 64  # tokens: a shorter shared prefix saves less than a second pass costs
# Rests run two at a time: PyTorch's fused CPU attention shares its backward pass among threads by
# row and head, and one row of the embedded model's 9 heads kept one of 2 cores idle for part of it
# (bench/RESULTS.md)
REST_ROWS = 2


def prefix_groups(examples: list[Encoded], min_prefix: int = MIN_PREFIX) -> list[tuple[list[int], int]]:
    """(example indices, shared prefix length) per group: runs of examples in token order, chosen
    to run the fewest positions. A group of n sharing p tokens runs (n - 1) * p fewer than its
    examples alone, so one filing's questions go together, and the next filing's, which share
    only the instruction with them, make a group of their own. A group shares at least
    `min_prefix` tokens and no fewer than its longest rest: examples that share a short
    instruction ahead of long, different filings would run those filings side by side in one
    pass, a few times the memory of one, to save the instruction. Its prefix ends before its first
    answer position, so every answer is read in the rest pass."""
    inputs = [example.input_ids[:-1] for example in examples]
    order = sorted(range(len(examples)), key=lambda i: inputs[i])
    limits = [_first_answer(examples[i]) for i in order]
    lengths = [len(inputs[i]) for i in order]
    neighbours = [common_prefix_length(inputs[a], inputs[b]) for a, b in zip(order, order[1:])]

    def shared(start: int, end: int) -> int:  # the prefix of the sorted run order[start:end]
        return min(limits[start:end] + neighbours[start:end - 1])

    def worth_a_group(start: int, end: int, prefix: int) -> bool:
        return prefix >= max(min_prefix, max(lengths[start:end]) - prefix)

    # saved[end]: the most positions the first `end` examples can save; cut[end]: where its last run starts
    saved, cut = [0] * (len(order) + 1), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        saved[end], cut[end] = saved[end - 1], end - 1  # the last example alone
        for start in range(end - 1):
            prefix = shared(start, end)
            if worth_a_group(start, end, prefix) and saved[start] + (end - start - 1) * prefix > saved[end]:
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


def packed_passes(examples: list[Encoded], pad_id: int, min_prefix: int = MIN_PREFIX) -> list[dict[str, torch.Tensor]]:
    """One batch per prefix group: a group of several has its prefix in `prefix_ids` (one row),
    its examples' rests one after another in `input_ids` (one row, `rest_lengths` long each) and
    the answer positions in that row; a group of one is `batching.collate`'s plain batch."""
    return [_collate_group([examples[i] for i in indices], prefix) if len(indices) > 1
            else collate([examples[indices[0]]], pad_id)
            for indices, prefix in prefix_groups(examples, min_prefix)]


def _collate_group(examples: list[Encoded], prefix: int) -> dict[str, torch.Tensor]:
    rests = [example.input_ids[prefix:-1] for example in examples]
    answer_positions, answer_targets, start = [], [], 0
    for rest, example in zip(rests, examples):
        for column, target in enumerate(example.labels[prefix + 1:]):
            if target != IGNORE:
                answer_positions.append(start + column)
                answer_targets.append(target)
        start += len(rest)
    return {"prefix_ids": torch.tensor([examples[0].input_ids[:prefix]], dtype=torch.long),
            "input_ids": torch.tensor([[token for rest in rests for token in rest]], dtype=torch.long),
            "rest_lengths": torch.tensor(list(map(len, rests)), dtype=torch.long),
            "answer_positions": torch.tensor(answer_positions, dtype=torch.long),
            "answer_targets": torch.tensor(answer_targets, dtype=torch.long)}


def is_packed(batch: dict[str, torch.Tensor]) -> bool:
    return "prefix_ids" in batch


def packed_loss_sum(causal_lm, batch: dict[str, torch.Tensor], loss_sum) -> torch.Tensor:
    """A packed group's summed answer loss, `loss_sum(hidden, answer positions, targets)` over each
    rest. The prefix runs once with its graph; the rests then run over the prefix's cache, two to a
    call, and each call takes its gradients at once, so one call's graph is held at a time
    (_OneCallAtATime)."""
    decoder = causal_lm.get_decoder()
    prefix = decoder(input_ids=batch["prefix_ids"], use_cache=True).past_key_values
    prefix_tensors = [tensor for layer in prefix.layers for tensor in (layer.keys, layer.values)]
    trained = [parameter for parameter in causal_lm.parameters() if parameter.requires_grad]

    def rest_losses(prefix_leaves: list[torch.Tensor]):
        # a query block over a longer cache takes a causal mask with an offset
        with grouped_heads_under_masks(batch["input_ids"].device):
            for rows, positions, targets in _rests_side_by_side(batch, REST_ROWS):
                cache = _cache_holding(decoder.config, prefix_leaves, rows.shape[0])
                hidden = decoder(input_ids=rows, past_key_values=cache, use_cache=True).last_hidden_state
                yield loss_sum(hidden, positions, targets)

    return _OneCallAtATime.apply(rest_losses, len(prefix_tensors), *prefix_tensors, *trained)


class _OneCallAtATime(torch.autograd.Function):
    """The rests' summed loss, each call's gradients taken in the forward pass, before the next
    call runs: with respect to the prefix's keys and values and to the trained parameters. Held
    all together until the backward pass, the rests' graphs, each with its own copy of the
    prefix's keys and values where attention joins them to its own, made packing's peak memory
    higher than that of the examples unpacked (bench/RESULTS.md). The backward pass hands the
    prefix's share on to the prefix's graph, and the parameters' share to the parameters, both
    scaled by the loss's incoming gradient, so a caller's scaling (DeepSpeed's) applies as to any
    loss."""

    @staticmethod
    def forward(ctx, rest_losses, prefix_count: int, *inputs: torch.Tensor) -> torch.Tensor:
        gradients = [torch.zeros_like(tensor) for tensor in inputs]
        total = torch.zeros((), dtype=torch.float32, device=inputs[0].device)
        with torch.enable_grad():
            prefix_leaves = [tensor.detach().requires_grad_() for tensor in inputs[:prefix_count]]
            with_respect_to = prefix_leaves + list(inputs[prefix_count:])
            for loss in rest_losses(prefix_leaves):
                for gradient, rest_gradient in zip(gradients, torch.autograd.grad(loss, with_respect_to,
                                                                                   allow_unused=True)):
                    if rest_gradient is not None:
                        gradient += rest_gradient
                total += loss.detach()
        ctx.save_for_backward(*gradients)
        return total

    @staticmethod
    def backward(ctx, incoming: torch.Tensor):
        return (None, None, *(gradient * incoming for gradient in ctx.saved_tensors))


def _rests_side_by_side(batch: dict[str, torch.Tensor], rows: int):
    """A group's rests `rows` at a time, those of like length together, each call's rests
    right-padded to its longest (no real query attends to a later position, and a padding position
    is never read), with their answer positions in the call's flattened rows and their targets."""
    lengths = batch["rest_lengths"].tolist()
    rests = batch["input_ids"][0].split(lengths)
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    positions, targets = batch["answer_positions"], batch["answer_targets"]
    by_length = sorted(range(len(rests)), key=lengths.__getitem__)
    for chunk in (by_length[k:k + rows] for k in range(0, len(by_length), rows)):
        width = max(lengths[i] for i in chunk)
        call_positions, call_targets = [], []
        for row, i in enumerate(chunk):
            mine = (positions >= starts[i]) & (positions < starts[i] + lengths[i])
            call_positions.append(positions[mine] - starts[i] + row * width)
            call_targets.append(targets[mine])
        padded = torch.nn.utils.rnn.pad_sequence([rests[i] for i in chunk], batch_first=True)
        yield padded, torch.cat(call_positions), torch.cat(call_targets)


def _cache_holding(config, prefix_tensors: list[torch.Tensor], rows: int):
    """A fresh cache whose layers hold the prefix's keys and values ([keys, values, ...] by layer)
    as they are, seen by `rows` rows, not copied (a first `update` would copy them); the rows'
    gradients with respect to them add up in the prefix's."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    for layer, keys, values in zip(cache.layers, prefix_tensors[0::2], prefix_tensors[1::2]):
        keys, values = keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
    return cache
