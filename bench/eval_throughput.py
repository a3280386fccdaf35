"""Evaluation throughput: the project's evaluator against two baselines, on the same prompts and
model, with the answers asserted identical.

  (a) FinLoRA-style: one prompt at a time through `model.generate`;
  (b) plain batched `model.generate`: same batch size, input order, left padding, end token only;
  (c) finlora.generation, task by task as the evaluate stage calls it: length-sorted batches,
      shared-prefix KV cache, stop at end or newline.

    python bench/eval_throughput.py [--base models/base] [--batch-size 16] [--one-at-a-time 24]

Baseline (a) is slow, so it runs on the first N prompts and its rate is per example.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from finlora import models
from finlora.config import with_changes
from finlora.generation import first_line, generate_answers
from finlora.prepare import prepare
from finlora.prompts import build_context, prompt_ids
from finlora import samples
from finlora.tasks import TASKS


def xbrl_prompt_set(tokenizer, per_task: int) -> dict[str, list[list[int]]]:
    """One-shot prompts over sample filings (each holds a fiscal year of facts as XML)."""
    sets = {}
    for task in ("xbrl_tags", "xbrl_value"):
        raw = samples.generate(task, 1, per_task, seed=11)
        folder = Path(tempfile.mkdtemp())
        for name, content in raw["filings"].items():
            (folder / name).write_bytes(content)
        records = prepare(TASKS[task], raw["splits"]["test"], folder / "test.jsonl",
                          with_changes({"tasks": {"x": [task]}}), filings=folder).records
        sets[task] = [prompt_ids(tokenizer, r["context"], chat_template=True) for r in records]
    return sets


def prompt_set(tokenizer, tasks: list[str], per_task: int) -> dict[str, list[list[int]]]:
    return {task: [prompt_ids(tokenizer, build_context(TASKS[task].example(row)), chat_template=True)
                   for row in samples.generate(task, 1, per_task, seed=11)["splits"]["test"]]
            for task in tasks}


def finlora_by_task(model, tokenizer, by_task, batch_size, max_new_tokens):
    """As the evaluate stage runs it: task by task, each with its own shared prefix."""
    answers = []
    for prompts in by_task.values():
        answers += generate_answers(model, tokenizer, prompts, batch_size, max_new_tokens, progress=False).answers
    return answers


def one_at_a_time(model, tokenizer, prompts, max_new_tokens):
    answers = []
    for ids in prompts:
        ids = torch.tensor([ids])
        output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id)
        answers.append(first_line(tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)))
    return answers


def plain_batched(model, tokenizer, prompts, batch_size, max_new_tokens):
    answers = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        output = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        answers += [first_line(tokenizer.decode(row[width:], skip_special_tokens=True)) for row in output]
    return answers


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--one-at-a-time", type=int, default=24, help="prompts for baseline (a)")
    args = parser.parse_args()

    base = args.base
    if not (base / models.BASE_INFO).is_file():
        base = Path(tempfile.mkdtemp()) / "base"
        base.mkdir()
        models.materialize_base("smollm2-135m", base)
    tokenizer = models.load_tokenizer(base)
    model = models.load_base(base).eval()
    sets = {
        "sentiment (short, similar lengths)": prompt_set(tokenizer, ["fpb", "tfns", "fiqa", "nwgi"], 24),
        "all six tasks (mixed lengths)": prompt_set(tokenizer, [n for n, t in TASKS.items() if t.to_example], 16),
        "XBRL extraction (long prompts)": xbrl_prompt_set(tokenizer, 12),
    }
    warmup = sets["all six tasks (mixed lengths)"]["ner"]
    generate_answers(model, tokenizer, warmup, args.batch_size, 2, progress=False)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"max_new_tokens {args.max_new_tokens}, model {models.base_info(base)['base']}")
    print("| prompts | n | mean prompt tokens | (a) one at a time ex/s | (b) plain batched ex/s "
          "| finlora ex/s | finlora / (a) | finlora / (b) |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for name, by_task in sets.items():
            prompts = [p for task_prompts in by_task.values() for p in task_prompts]
            ours, t_ours = timed(lambda: finlora_by_task(model, tokenizer, by_task, args.batch_size,
                                                         args.max_new_tokens))
            plain, t_plain = timed(lambda: plain_batched(model, tokenizer, prompts, args.batch_size,
                                                         args.max_new_tokens))
            subset = prompts[:args.one_at_a_time]
            single, t_single = timed(lambda: one_at_a_time(model, tokenizer, subset, args.max_new_tokens))
            assert plain == ours, "plain batched generation and finlora disagree"
            assert single == ours[:len(subset)], "one-at-a-time generation and finlora disagree"
            rate_ours, rate_plain, rate_single = len(prompts) / t_ours, len(prompts) / t_plain, len(subset) / t_single
            mean_len = sum(map(len, prompts)) / len(prompts)
            print(f"| {name} | {len(prompts)} | {mean_len:.0f} | {rate_single:.2f} | {rate_plain:.2f} | {rate_ours:.2f} "
                  f"| {rate_ours / rate_single:.1f}x | {rate_ours / rate_plain:.2f}x |")
    print("answers identical across all three: yes")


if __name__ == "__main__":
    main()
