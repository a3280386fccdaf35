"""Batched greedy decoding for evaluation and prediction.

Four things make it fast without changing a single answer:
  - prompts are sorted by length, so a batch carries little padding;
  - a batch holds at most `batch_tokens` prompt tokens, padding included, so long prompts
    (XBRL's run to 7,800 tokens) go a few at a time instead of all padded to the longest;
  - the prefix every prompt shares (chat preamble + instruction) is run through the model once,
    and its key/value cache is reused by every batch;
  - a row stops at the end token or at its first newline, since the answer is the first line.
Rows are left-padded (between the shared prefix and the rest) and answers come back in input order.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch

from finlora.runtime import attention_without_cudnn


@dataclass
class Generated:
    answers: list[str]
    new_tokens: int  # tokens generated, over all rows


def generate_answers(model, tokenizer, prompts: list[list[int]], batch_size: int, max_new_tokens: int,
                     progress: bool = True, reuse_prefix: bool = True, batch_tokens: int | None = None,
                     first_line_only: bool = True) -> Generated:
    """Greedy answers to token prompts. `first_line_only`: stop at a newline and keep the first line
    (eval.protocol strict); else stop at the end token only and keep the whole continuation."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    prefix = shared_prefix(prompts) if reuse_prefix else []
    suffixes = [p[len(prefix):] for p in prompts]
    stop_ids = stop_token_ids(tokenizer) if first_line_only else [tokenizer.eos_token_id]
    stops = set(stop_ids)
    answers: list[str] = [""] * len(prompts)
    new_tokens = 0
    with (torch.inference_mode(), attention_without_cudnn(),
          tqdm(total=len(prompts), desc="generate", unit="ex", disable=not progress) as bar):
        prefix_cache = _prefix_cache(model, prefix, device)
        for rows in length_batches([len(p) for p in prompts], batch_size, batch_tokens):
            batch = left_pad([suffixes[i] for i in rows], tokenizer.pad_token_id, device, prefix)
            extra = {}
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(rows))
                extra["past_key_values"] = cache
            output = model.generate(**batch, **extra, max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
            generated = output[:, batch["input_ids"].shape[1]:]
            for row, tokens in zip(rows, generated):
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                answers[row] = first_line(text) if first_line_only else text
                new_tokens += _length_until_stop(tokens.tolist(), stops)
            bar.update(len(rows))
    return Generated(answers, new_tokens)


def length_batches(lengths: list[int], batch_size: int, batch_tokens: int | None = None) -> list[list[int]]:
    """Indices, longest first, in batches of at most `batch_size` and (where given) at most
    `batch_tokens` tokens once padded to the batch's longest; a longer prompt goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and (batch_tokens is None
                                                   or (len(batch) + 1) * lengths[batch[0]] <= batch_tokens):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def shared_prefix(prompts: list[list[int]]) -> list[int]:
    """The longest common token prefix, leaving every prompt at least one token of its own."""
    if len(prompts) < 2:
        return []
    limit = min(len(p) for p in prompts) - 1
    first = prompts[0]
    length = 0
    while length < limit and all(p[length] == first[length] for p in prompts):
        length += 1
    return first[:length]


def _prefix_cache(model, prefix: list[int], device):
    if not prefix:
        return None
    ids = torch.tensor([prefix], device=device)
    return model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True).past_key_values


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
