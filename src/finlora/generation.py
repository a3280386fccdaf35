"""Batched greedy decoding for evaluation and prediction.

Prompts are sorted by length so a batch carries little padding, padded on the left so every
row's answer starts at the same column, decoded greedily with the KV cache, and stopped at the
end token; answers come back in input order.
"""

from __future__ import annotations

import torch


def generate_answers(model, tokenizer, prompts: list[list[int]], batch_size: int, max_new_tokens: int,
                     progress: bool = True) -> list[str]:
    from tqdm.auto import tqdm

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    answers: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    with torch.inference_mode(), tqdm(total=len(prompts), desc="generate", unit="ex", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = left_pad([prompts[i] for i in rows], tokenizer.pad_token_id, device)
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = output[:, batch["input_ids"].shape[1]:]
            for row, tokens in zip(rows, new_tokens):
                answers[row] = first_line(tokenizer.decode(tokens, skip_special_tokens=True))
            bar.update(len(rows))
    return answers


def left_pad(prompts: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def first_line(text: str) -> str:
    text = text.strip()
    return text.split("\n", 1)[0].strip() if text else ""
