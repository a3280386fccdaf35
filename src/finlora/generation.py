"""Batched greedy decoding for evaluation and prediction.

Four things make it fast without changing a single answer:
  - prompts are sorted by length, so a batch carries little padding;
  - a batch holds at most `batch_tokens` prompt tokens, padding included (a prefix its rows read
    from one copy counted once), so long prompts (XBRL's run to 7,800 tokens) go a few at a time
    instead of all padded to the longest;
  - a prefix that several prompts share is run through the model once, and its key/value cache is
    reused by every batch of them (`prefix_cache`: tree, nested prefixes such as one filing's
    questions under the instruction every prompt shares | shared, that instruction only | none);
    under `tree`, on a CPU, a batch's rows attend to one copy of it (`finlora.prefix_attention`),
    elsewhere each row gets a copy;
  - a row stops at the end token or at its first newline, since the answer is the first line.
Rows are left-padded (between their prefix and the rest) and answers come back in input order.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from finlora.config import PREFIX_CACHES
from finlora.prompts import common_prefix_length
from finlora.runtime import attention_without_cudnn

MIN_SHARED_TOKENS = 32  # a nested prefix shorter than this is not worth a forward pass and a cache of its own


@dataclass
class Generated:
    answers: list[str]
    new_tokens: int  # tokens generated, over all rows


@dataclass
class Batch:
    rows: list[int]  # indices into the prompts
    answers: list[str]
    new_tokens: int


def generate_answers(model, tokenizer, prompts: list[list[int]], batch_size: int, max_new_tokens: int,
                     progress: bool = True, batch_tokens: int | None = None, first_line_only: bool = True,
                     prefix_cache: str = "tree") -> Generated:
    """Greedy answers to token prompts. `first_line_only`: stop at a newline and keep the first line
    (eval.protocol strict); else stop at the end token only and keep the whole continuation."""
    answers: list[str] = [""] * len(prompts)
    new_tokens = 0
    for batch in answer_batches(model, tokenizer, prompts, batch_size, max_new_tokens, progress, batch_tokens,
                                first_line_only, prefix_cache):
        for row, answer in zip(batch.rows, batch.answers):
            answers[row] = answer
        new_tokens += batch.new_tokens
    return Generated(answers, new_tokens)


def answer_batches(model, tokenizer, prompts: list[list[int]], batch_size: int, max_new_tokens: int,
                   progress: bool = True, batch_tokens: int | None = None, first_line_only: bool = True,
                   prefix_cache: str = "tree", done: frozenset[int] = frozenset()) -> Iterator[Batch]:
    """`generate_answers` one batch at a time, in the prefix tree's order, so a caller can keep
    each batch's answers as soon as they exist. Batches whose prompts are all `done` (answered by
    an interrupted run) are skipped: the plan of batches is made over every prompt, so the rest
    go in the very batches an uninterrupted run gives them, and get its answers."""
    from tqdm.auto import tqdm

    from finlora import prefix_attention  # transformers, imported when generating, not for a stage's --help

    device = next(model.parameters()).device
    stop_ids = stop_token_ids(tokenizer) if first_line_only else [tokenizer.eos_token_id]
    stops = set(stop_ids)
    tree = prefix_tree(prompts, prefix_cache)
    share = prefix_cache == "tree" and prefix_attention.supported(device)
    with tqdm(total=len(prompts) - len(done), desc="generate", unit="ex", disable=not progress) as bar:
        for rows, inputs in _batches_under(tree, model, prompts, batch_size, batch_tokens,
                                           tokenizer.pad_token_id, device, done, share):
            shared = share and "past_key_values" in inputs
            with torch.inference_mode(), attention_without_cudnn(), \
                    prefix_attention.in_use(model) if shared else contextlib.nullcontext():
                output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                        eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
            generated = output[:, inputs["input_ids"].shape[1]:].tolist()
            texts = [tokenizer.decode(tokens, skip_special_tokens=True) for tokens in generated]
            bar.update(len(rows))
            yield Batch(rows, [first_line(text) if first_line_only else text for text in texts],
                        sum(_length_until_stop(tokens, stops) for tokens in generated))


@dataclass
class PrefixNode:
    """Prompts that all start with `prefix`: `rows` continue from it directly, `children` share a
    longer prefix among themselves."""
    prefix: list[int]
    rows: list[int] = field(default_factory=list)
    children: list[PrefixNode] = field(default_factory=list)


def prefix_tree(prompts: list[list[int]], mode: str = "tree", min_tokens: int = MIN_SHARED_TOKENS) -> PrefixNode:
    """The prompts' shared prefixes as a tree: under `tree`, a group of prompts that shares at
    least `min_tokens` more than its parent gets a node of its own; every prompt keeps at least one
    token beyond its node's prefix. `shared`: the root only; `none`: no prefix at all."""
    if mode not in PREFIX_CACHES:
        raise ValueError(f"prefix cache {mode!r}: expected one of {PREFIX_CACHES}")
    if mode == "none" or not prompts:
        return PrefixNode([], list(range(len(prompts))))
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    neighbours = [common_prefix_length(prompts[a], prompts[b]) for a, b in zip(order, order[1:])]
    root = _node(prompts, order, neighbours, 0, len(order))
    if mode == "shared":
        return PrefixNode(root.prefix, order)
    return _grow(prompts, order, neighbours, root, min_tokens)


def _grow(prompts, order, neighbours, node: PrefixNode, min_tokens: int) -> PrefixNode:
    """Split the node's sorted span into runs whose neighbours share `min_tokens` more than it."""
    start, end = node.rows[0], node.rows[-1] + 1  # positions in `order`, not prompt indices
    node.rows = []
    run_start = start
    for position in range(start, end):
        if position + 1 < end and neighbours[position] >= len(node.prefix) + min_tokens:
            continue
        child = _node(prompts, order, neighbours, run_start, position + 1)
        if position > run_start and len(child.prefix) >= len(node.prefix) + min_tokens:
            node.children.append(_grow(prompts, order, neighbours, child, min_tokens))
        else:
            node.rows.extend(order[run_start:position + 1])
        run_start = position + 1
    return node


def _node(prompts, order, neighbours, start: int, end: int) -> PrefixNode:
    """The node of the sorted span order[start:end] (its rows, for now, the span's positions)."""
    rows = order[start:end]
    shared = min([*neighbours[start:end - 1], min(len(prompts[i]) for i in rows) - 1]) if end - start > 1 else 0
    return PrefixNode(prompts[rows[0]][:shared], list(range(start, end)))


def _batches_under(node: PrefixNode, model, prompts, batch_size, batch_tokens, pad_id, device, done, share: bool,
                   parent_cache=None, parent_length: int = 0) -> Iterator[tuple[list[int], dict]]:
    """Depth first: the node's prefix extends its parent's cache once; its children, then its own
    rows (in `length_batches`), continue from that cache: all of a batch's rows from one copy
    (`share`, where `batch_tokens` counts the prefix once) or each from a copy of its own. A node
    with nothing left is passed by."""
    from finlora import prefix_attention

    if done.issuperset(_rows_under(node)):
        return
    cache = parent_cache
    if len(node.prefix) > parent_length:
        cache = _extend_cache(model, parent_cache, node.prefix, parent_length, device)
    for child in node.children:
        yield from _batches_under(child, model, prompts, batch_size, batch_tokens, pad_id, device, done, share,
                                  cache, len(node.prefix))
    for batch in length_batches([len(prompts[i]) for i in node.rows], batch_size, batch_tokens,
                                len(node.prefix) if share else 0):
        rows = [node.rows[k] for k in batch]
        if done.issuperset(rows):
            continue
        inputs = left_pad([prompts[i][len(node.prefix):] for i in rows], pad_id, device, node.prefix)
        if cache is not None and share:
            inputs["past_key_values"] = prefix_attention.cache_over(cache)
        elif cache is not None:
            copies = _fork(cache)
            copies.batch_repeat_interleave(len(rows))
            inputs["past_key_values"] = copies
        yield rows, inputs


def _rows_under(node: PrefixNode) -> list[int]:
    return node.rows + [row for child in node.children for row in _rows_under(child)]


def _fork(cache):
    """A cache of its own that shares the parent's key/value tensors instead of copying them: a
    dynamic cache's every update replaces a layer's tensors (torch.cat) and never writes into
    them, so the parent stays as it was for its other children."""
    return copy.deepcopy(cache, {id(tensor): tensor for layer in cache.layers for tensor in (layer.keys, layer.values)})


def _extend_cache(model, parent_cache, prefix: list[int], cached: int, device):
    """The cache of `prefix`, computed from the parent's cache of its first `cached` tokens."""
    ids = torch.tensor([prefix[cached:]], device=device)
    mask = torch.ones((1, len(prefix)), dtype=torch.long, device=device)
    past = _fork(parent_cache) if parent_cache is not None else None
    with torch.inference_mode(), attention_without_cudnn():  # logits of the last position only: all of a
        # 6,000-token prefix's would take 1.2 GB of the embedded model's 49,152-word vocabulary
        return model(input_ids=ids, attention_mask=mask, past_key_values=past, use_cache=True,
                     logits_to_keep=1).past_key_values


def length_batches(lengths: list[int], batch_size: int, batch_tokens: int | None = None,
                   held_once: int = 0) -> list[list[int]]:
    """Indices, longest first, in batches of at most `batch_size` and (where given) at most
    `batch_tokens` tokens once padded to the batch's longest, the first `held_once` tokens of
    every prompt (a prefix its rows read from one copy) counted once; a longer prompt goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and (
                batch_tokens is None or (len(batch) + 1) * (lengths[batch[0]] - held_once) + held_once <= batch_tokens):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def left_pad(prompts: list[list[int]], pad_id: int, device, prefix: list[int] = ()) -> dict[str, torch.Tensor]:
    """`prefix` + padding + prompt for each row; the mask hides the padding."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), len(prefix) + width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    ids[:, :len(prefix)] = torch.tensor(list(prefix), dtype=torch.long)
    mask[:, :len(prefix)] = 1
    for row, prompt in enumerate(prompts):
        ids[row, ids.shape[1] - len(prompt):] = torch.tensor(prompt)
        mask[row, ids.shape[1] - len(prompt):] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


@functools.lru_cache(maxsize=8)
def stop_token_ids(tokenizer) -> list[int]:
    """The end token and every token that contains a newline (computed once per tokenizer)."""
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    newline = [i for i, token in enumerate(vocab)
               if token is not None and "\n" in tokenizer.convert_tokens_to_string([token])]
    return sorted({tokenizer.eos_token_id, *newline})


def _length_until_stop(tokens: list[int], stops: set[int]) -> int:
    for position, token in enumerate(tokens):
        if token in stops:
            return position + 1
    return len(tokens)


def first_line(text: str) -> str:
    """The answer: the generated text up to its first newline."""
    return text.split("\n", 1)[0].strip()
