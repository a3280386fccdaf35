"""What each part of finlora's train step gives on this machine: one process, one LoRA model, the
same examples as bench/train_throughput.py, each variant timed over the same batches.

    python bench/train_step_parts.py [--base models/base] [--profile]

Variants: the loss over full logits (what a plain Trainer computes) or over answer positions
only (finlora), on random batches (a plain data loader) or length-grouped ones (finlora), with
each example's end token also fed as an input (as a plain Trainer does) or only as a target
(finlora), with torch's LoRA dropout masks or finlora's float32 ones (finlora.dropout), and
finlora's step through a plain torch loop or through DeepSpeed's engine. Every
variant runs over all 128 examples (16 batches of 8) after one warm-up step, and prints ms per
step and the examples' tokens per second. --profile adds torch.profiler's table of where
finlora's step goes.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from finlora import batching, launch, models, training
from finlora.config import with_changes
from finlora.dropout import use_uniform_mask_dropout
from finlora.loss import answer_loss_sum
from train_throughput import records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--profile", action="store_true", help="print where finlora's step spends its time")
    args = parser.parse_args()

    params = with_changes({"tasks": {"bench": ["fpb"]}, "lora": {"rank": 8}, "train": {"batch_size": 8, "lr": 1e-4, "max_seq_len": 256, "epochs": 1}})
    tokenizer = models.load_tokenizer(args.base, True)
    encoded, _ = batching.encode(tokenizer, records(32), 1024, True)
    grouped = [[encoded[i] for i in step[0]] for step in batching.micro_batches(encoded, params, 1)]
    shuffled = random.Random(0).sample(encoded, len(encoded))
    plain = [shuffled[i:i + 8] for i in range(0, len(shuffled) - 7, 8)]
    pad = tokenizer.pad_token_id

    def end_token_as_input(batch):  # one more position, which collate drops: the whole example is input
        return [batching.Encoded(e.input_ids + [pad], e.labels + [batching.IGNORE]) for e in batch]

    batches = {name: [batching.collate(b, pad) for b in group]
               for name, group in (("grouped", grouped),
                                   ("grouped, end token input", map(end_token_as_input, grouped)),
                                   ("random, end token input", map(end_token_as_input, plain)))}

    launch.init_distributed()
    model = models.add_lora(models.load_base(args.base, 16), params.lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    import deepspeed

    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=training.deepspeed_config(params, 1))
    engine.train()

    def full_logits(batch):  # the mean cross-entropy a causal LM computes over all its logits
        logits = model(input_ids=batch["input_ids"]).logits
        targets = torch.full((logits.shape[0] * logits.shape[1],), batching.IGNORE)
        targets[batch["answer_positions"]] = batch["answer_targets"]
        F.cross_entropy(logits.flatten(0, 1).float(), targets, ignore_index=batching.IGNORE).backward()
        optimizer.step()
        optimizer.zero_grad()

    def answer_only(batch):
        loss, tokens = answer_loss_sum(model, batch)
        (loss / tokens).backward()
        optimizer.step()
        optimizer.zero_grad()

    def answer_only_engine(batch):
        loss, tokens = answer_loss_sum(engine.module, batch)
        engine.backward(loss / tokens)
        engine.step()

    example_tokens = sum(len(e.input_ids) for e in encoded)  # every variant trains on all of them

    def time_variant(name, step, kind):
        timed = batches[kind]
        step(timed[0])  # warm-up
        start = time.perf_counter()
        for batch in timed:
            step(batch)
        seconds = time.perf_counter() - start
        print(f"| {name} | {seconds / len(timed) * 1000:.0f} | {example_tokens / seconds:.0f} |")

    print("| variant | ms per step | tokens/s |\n|---|---|---|")
    time_variant("full logits, random batches, end token input", full_logits, "random, end token input")
    time_variant("full logits, grouped batches, end token input", full_logits, "grouped, end token input")
    time_variant("answer only, grouped batches, end token input", answer_only, "grouped, end token input")
    time_variant("answer only, grouped batches", answer_only, "grouped")
    use_uniform_mask_dropout(model)
    time_variant("answer only, grouped batches, float32 dropout masks", answer_only, "grouped")
    time_variant("the same through DeepSpeed's engine (finlora's step)", answer_only_engine, "grouped")

    if args.profile:
        from torch.profiler import profile

        with profile() as profiler:
            for batch in batches["grouped"][:3]:
                answer_only_engine(batch)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
