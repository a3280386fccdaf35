"""What each part of finlora's train step gives on this machine: one process, one LoRA model, the
same examples as bench/train_throughput.py, each variant timed over the same batches.

    python bench/train_step_parts.py [--base models/base] [--profile]

Variants: the loss over full logits (what a plain Trainer computes) or over answer positions
only (finlora), on random batches (a plain data loader) or length-grouped ones (finlora), and
finlora's step through a plain torch loop or through DeepSpeed's engine. Every variant runs over
all 128 examples (16 batches of 8) after one warm-up step, and prints ms per step and real tokens
per second. --profile adds torch.profiler's table of where finlora's step goes.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from finlora import models, training
from finlora.config import parse_params
from train_throughput import records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--profile", action="store_true", help="print where finlora's step spends its time")
    args = parser.parse_args()

    params = parse_params({"tasks": {"bench": ["fpb"]}, "lora": {"rank": 8}, "train": {"batch_size": 8}})
    tokenizer = models.load_tokenizer(args.base, True)
    encoded, _ = training.encode(tokenizer, records(32), 1024, True)
    grouped = [[encoded[i] for i in step[0]] for step in training.micro_batches(encoded, params, 1)]
    shuffled = random.Random(0).sample(encoded, len(encoded))
    plain = [shuffled[i:i + 8] for i in range(0, len(shuffled) - 7, 8)]
    batches = {name: [training.collate(b, tokenizer.pad_token_id) for b in group]
               for name, group in (("grouped", grouped), ("random", plain))}

    training.init_distributed()
    model = models.add_lora(models.load_base(args.base, 16), params.lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    import deepspeed

    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=training.deepspeed_config(params, 1))
    engine.train()

    def full_logits(batch):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def answer_only(batch):
        loss, tokens = training.answer_loss_sum(model, batch)
        (loss / tokens).backward()
        optimizer.step()
        optimizer.zero_grad()

    def answer_only_engine(batch):
        loss, tokens = training.answer_loss_sum(engine.module, batch)
        engine.backward(loss / tokens)
        engine.step()

    variants = [("full logits, random batches", full_logits, "random"),
                ("full logits, grouped batches", full_logits, "grouped"),
                ("answer only, grouped batches", answer_only, "grouped"),
                ("answer only, grouped, DeepSpeed engine (finlora)", answer_only_engine, "grouped")]
    print("| variant | ms per step | real tokens/s |\n|---|---|---|")
    for name, step, kind in variants:
        timed = batches[kind]
        step(timed[0])  # warm-up
        start = time.perf_counter()
        for batch in timed:
            step(batch)
        seconds = time.perf_counter() - start
        real = sum(int(batch["attention_mask"].sum()) for batch in timed)
        print(f"| {name} | {seconds / len(timed) * 1000:.0f} | {real / seconds:.0f} |")

    if args.profile:
        from torch.profiler import profile

        with profile() as profiler:
            for batch in batches["grouped"][:3]:
                answer_only_engine(batch)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
