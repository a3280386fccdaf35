"""Shared prefixes computed once: evaluation under `eval.prefix_cache: shared` (the evaluator as it
was: only the prefix every prompt of a task shares is reused) against `tree` (nested prefixes: one
filing's questions under the instruction), on FinLoRA's released prompts, with the answers asserted
identical. Each (task, mode) runs in a process of its own, so its peak memory is its own.

    python bench/prefix_reuse.py [--data ../shared/data/finlora-dev] [--tasks xbrl_tags finer]
                                 [--limit N]   # the first N prompts of each task (0 = all)

Prompts are FinLoRA's test contexts as released, raw; answer lengths, batch size and batch token
cap come from params.yaml. The embedded model's context is 8,192 tokens: FNXL's prompts (about 10K)
run with it raised to 16,384 (its rotary embedding takes any position; the answers are noise, the
cost is real). Prints a Markdown table with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dev_real import DEV_DATA

TASKS = ["xbrl_tags", "xbrl_value", "finer", "fnxl"]
LONG_CONTEXT = 16_384


def prompts_of(data: Path, task: str, tokenizer, limit: int) -> list[list[int]]:
    from finlora.files import read_jsonl
    from finlora.prompts import prompt_ids
    from finlora.sources import released

    found = released.find(released.data_folder(data), task, "test")
    if found is None:
        sys.exit(f"{data}: no test file for {task} ({released.expected(task, 'test')})")
    records = read_jsonl(found.path)
    records = records[:limit] if limit else records
    return [prompt_ids(tokenizer, record["context"], False) for record in records]


def worker(args) -> None:
    """One (task, mode): generate every prompt's answer, write answers and seconds to --result."""
    import torch

    from finlora import models
    from finlora.config import load_params
    from finlora.generation import generate_answers
    from finlora.protocols import answer_length

    params = load_params()
    tokenizer = models.load_tokenizer(args.base, False)
    model = models.load_model(args.base, None, params.eval.bits)
    prompts = prompts_of(args.data, args.task, tokenizer, args.limit)
    if max(map(len, prompts)) + answer_length(params.eval, args.task) > model.config.max_position_embeddings:
        model.config.max_position_embeddings = LONG_CONTEXT
    start = time.perf_counter()
    result = generate_answers(model, tokenizer, prompts, params.eval.batch_size, answer_length(params.eval, args.task),
                              progress=False, batch_tokens=params.eval.batch_tokens, prefix_cache=args.mode)
    seconds = time.perf_counter() - start
    args.result.write_text(json.dumps({"seconds": seconds, "answers": result.answers, "prompts": len(prompts),
                                       "tokens": sum(map(len, prompts)), "threads": torch.get_num_threads()}))


def run(args, task: str, mode: str) -> dict:
    """The worker in a child process; its peak resident memory from the kernel's accounting."""
    result = Path(tempfile.mkstemp(suffix=".json")[1])
    command = [sys.executable, __file__, "--worker", "--task", task, "--mode", mode, "--result", str(result),
               "--data", str(args.data), "--base", str(args.base), "--limit", str(args.limit)]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{task} under {mode} failed (exit {child.returncode})")
    return {**json.loads(result.read_text()), "peak_gb": usage.ru_maxrss / 1e6}  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_DATA, help="FinLoRA's released files (or a share of them)")
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--limit", type=int, default=0, help="the first N prompts of each task; 0 = all")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(f"data {args.data}, base {args.base}, {os.cpu_count()} CPUs")
    print("| task | prompts | prompt tokens | shared s | tree s | tree / shared speed | peak GB shared -> tree "
          "| answers |\n|---|---|---|---|---|---|---|---|", flush=True)
    for task in args.tasks:
        shared, tree = run(args, task, "shared"), run(args, task, "tree")
        same = shared["answers"] == tree["answers"]
        print(f"| {task} | {shared['prompts']} | {shared['tokens']:,} | {shared['seconds']:.0f} | {tree['seconds']:.0f} "
              f"| {shared['seconds'] / tree['seconds']:.2f}x | {shared['peak_gb']:.2f} -> {tree['peak_gb']:.2f} "
              f"| {'identical' if same else 'DIFFER'} |", flush=True)
        if not same:
            sys.exit(f"{task}: the tree's answers differ from the shared prefix's")


if __name__ == "__main__":
    main()
