"""What the training loss's padding mask and key-value cache cost: peak memory and time of one
forward and backward pass, finlora's loss now (no mask, no cache, answer rows by `index_select`)
against the loss as it was (a padding mask, the model's default cache, answer rows by a boolean
mask), and with the mask alone, on the same padded batch.

    python bench/padding_mask.py [--base models/base] [--lengths 640 600] [--passes 3]

The batch holds one example per `--lengths` entry (random token ids, the last 8 of each the
answer), padded on the right to the longest, as `finlora.batching.collate` pads. Each variant runs
in a fresh process (peak RSS is a per-process figure): one warm-up pass, then `--passes` timed
ones. Prints the rise of peak RSS over the loaded model, the median seconds a pass, the loss (equal
in every variant: padding after a token is invisible to it in a causal model) and the ratios
against the loss as it was.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from finlora import batching, models
from finlora.config import with_changes
from finlora.loss import answer_loss_sum

ANSWER_TOKENS = 8
VARIANTS = {"as it was": "mask and cache", "mask alone": "mask", "finlora now": "neither"}


def padded_batch(lengths: list[int], vocab: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """finlora's batch for examples of these lengths, and the padding mask of the same batch."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for length in lengths:
        ids = torch.randint(100, vocab, (length,), generator=generator).tolist()
        examples.append(batching.Encoded(ids, [batching.IGNORE] * (length - ANSWER_TOKENS) + ids[-ANSWER_TOKENS:]))
    batch = batching.collate(examples, pad_id=0)
    mask = torch.arange(batch["input_ids"].shape[1]) < torch.tensor([[length - 1] for length in lengths])
    return batch, mask


def loss_as_it_was(model, batch: dict[str, torch.Tensor], mask: torch.Tensor, cache: bool) -> torch.Tensor:
    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=mask.long(),
                                     **({} if cache else {"use_cache": False})).last_hidden_state
    keep = torch.zeros(mask.numel(), dtype=torch.bool)
    keep[batch["answer_positions"]] = True
    logits = causal_lm.get_output_embeddings()(hidden[keep.view_as(mask)])
    return F.cross_entropy(logits.float(), batch["answer_targets"], reduction="sum")


def run_worker(args) -> dict:
    torch.manual_seed(0)
    lora = with_changes({"tasks": {"bench": ["fpb"]}, "lora": {"rank": 4}}).lora
    model = models.add_lora(models.load_base(args.base, 16), lora).train()
    batch, mask = padded_batch(args.lengths, model.config.vocab_size)
    kind = VARIANTS[args.worker]

    def one_pass() -> float:
        if kind == "neither":
            loss, _ = answer_loss_sum(model, batch)
        else:
            loss = loss_as_it_was(model, batch, mask, cache=kind == "mask and cache")
        loss.backward()
        model.zero_grad()
        return loss.item()

    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loss = one_pass()  # warm-up
    seconds = []
    for _ in range(args.passes):
        start = time.perf_counter()
        one_pass()
        seconds.append(time.perf_counter() - start)
    rise_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - loaded) / 1024
    return {"peak_rise_mb": rise_mb, "seconds": statistics.median(seconds), "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--lengths", type=int, nargs="+", default=[640, 600], help="tokens of each example")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)))
        return

    results = {}
    for name in VARIANTS:
        output = subprocess.run([sys.executable, __file__, "--worker", name, *sys.argv[1:]],
                                capture_output=True, text=True)
        lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
        if output.returncode != 0 or not lines:
            sys.exit(f"{name} failed:\n{output.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][len("RESULT "):])
    before = results["as it was"]
    print(f"batch of {len(args.lengths)} examples ({', '.join(map(str, args.lengths))} tokens), "
          f"{models.base_info(args.base)['base']}, LoRA r4 q/k/v, one forward and backward pass")
    print("| loss | padding mask | key-value cache | peak RSS rise (MB) | s a pass | loss value |\n|---|---|---|---|---|---|")
    for name, result in results.items():
        kind = VARIANTS[name]
        print(f"| {name} | {'yes' if 'mask' in kind else 'no'} | {'yes' if 'cache' in kind else 'no'} "
              f"| {result['peak_rise_mb']:.0f} | {result['seconds']:.2f} | {result['loss']:.4f} |")
    for name, result in list(results.items())[1:]:
        print(f"{name} / as it was: peak RSS rise {result['peak_rise_mb'] / before['peak_rise_mb']:.2f}, "
              f"time {result['seconds'] / before['seconds']:.2f}")


if __name__ == "__main__":
    main()
