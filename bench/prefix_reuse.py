"""Shared prefixes computed once, on FinLoRA's released prompts, each (task, mode) in a process of its
own, so its peak memory is its own:

- evaluation under `eval.prefix_cache: shared` (the evaluator as it was: only the prefix every
  prompt of a task shares is reused, a copy of it for each row of a batch) against `tree` (nested
  prefixes: one filing's questions under the instruction; on a CPU a batch's rows attend to one
  copy of each), with the answers asserted identical;
- with --train, one optimizer step's forward and backward passes over the first N examples of a
  task (timed after an untimed warm-up pass over the first micro-batch), in the group's
  micro-batches unpacked (train.by_group's batch size, as training runs today) against
  micro-batches of --pack-batch examples packed by shared prefix (train.prefix_packing: a pass
  per prefix group, its prefix run once and the rests from its cache), with the summed loss and
  the gradient asserted equal (LoRA dropout off).

    python bench/prefix_reuse.py [--data ../shared/data/finlora-dev] [--tasks xbrl_tags finer]
                                 [--limit N]   # the first N prompts of each task (0 = all)
    python bench/prefix_reuse.py --train --tasks finer xbrl_tags --limit 8 [--pack-batch 8]
    python bench/prefix_reuse.py [--train] --tasks xbrl_tags --questions-per-body 18 --limit 18
    python bench/prefix_reuse.py --tasks finer --limit 14 --whole-answers   # decoding, not only prefill

The development share keeps 2-3 questions of each XBRL filing body, where FinLoRA's whole files ask
about 18; --questions-per-body N rebuilds that layout from the share (each body asked the share's
first N questions), which is what a user with the whole files runs.

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
GROUP = {"xbrl_tags": "xbrl", "xbrl_value": "xbrl", "finer": "finer", "fnxl": "finer"}  # train.by_group's
LONG_CONTEXT = 16_384
QUESTION = "\nQuestion: "  # an XBRL prompt: instruction, filing body, worked example, then its question


def records_of(args, task: str) -> list[dict]:
    from finlora.files import read_jsonl
    from finlora.sources import released

    found = released.find(released.data_folder(args.data), task, "test")
    if found is None:
        sys.exit(f"{args.data}: no test file for {task} ({released.expected(task, 'test')})")
    records = read_jsonl(found.path)
    if args.questions_per_body:
        records = whole_file_layout(records, args.questions_per_body, task)
    return records[:args.limit] if args.limit else records


def whole_file_layout(records: list[dict], per_body: int, task: str) -> list[dict]:
    """FinLoRA's whole XBRL files ask about 18 questions of each filing; the development share keeps a
    quarter of the records, 2-3 questions a filing body. Rebuild the whole files' layout from the share:
    each of its filing bodies (ordered as they first come) asked its first `per_body` distinct
    questions, each with its own target."""
    split = [record["context"].rpartition(QUESTION) for record in records]
    if not all(marker for _, marker, _ in split):
        sys.exit(f"--questions-per-body: {task}'s prompts do not end in {QUESTION.strip()!r} (XBRL tasks only)")
    bodies = list(dict.fromkeys(body for body, _, _ in split))
    questions = list(dict.fromkeys((question, record["target"]) for (_, _, question), record in zip(split, records)))
    if per_body > len(questions):
        sys.exit(f"--questions-per-body {per_body}: {task} has {len(questions)} distinct questions")
    return [{"context": body + QUESTION + question, "target": target}
            for body in bodies for question, target in questions[:per_body]]


def prompts_of(args, task: str, tokenizer) -> list[list[int]]:
    from finlora.prompts import prompt_ids

    return [prompt_ids(tokenizer, record["context"], False) for record in records_of(args, task)]


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
    prompts = prompts_of(args, args.task, tokenizer)
    if max(map(len, prompts)) + answer_length(params.eval, args.task) > model.config.max_position_embeddings:
        model.config.max_position_embeddings = LONG_CONTEXT
    start = time.perf_counter()
    result = generate_answers(model, tokenizer, prompts, params.eval.batch_size, answer_length(params.eval, args.task),
                              progress=False, batch_tokens=params.eval.batch_tokens, prefix_cache=args.mode,
                              first_line_only=not args.whole_answers)
    seconds = time.perf_counter() - start
    args.result.write_text(json.dumps({"seconds": seconds, "answers": result.answers, "prompts": len(prompts),
                                       "tokens": sum(map(len, prompts)), "threads": torch.get_num_threads()}))


def train_worker(args) -> None:
    """One (task, mode): forward and backward over the examples in micro-batches, summing the loss;
    write seconds, the loss, the answer tokens and the gradient to --result."""
    import torch

    from finlora import models, packing
    from finlora.batching import collate, encode
    from finlora.config import with_changes
    from finlora.loss import answer_loss_sum

    params = with_changes({"lora": {"dropout": 0.0}})  # dropout off: the two layouts see the same weights
    train = params.train.for_group(GROUP[args.task])
    tokenizer = models.load_tokenizer(args.base, False)
    encoded, _ = encode(tokenizer, records_of(args, args.task), LONG_CONTEXT, False)
    torch.manual_seed(0)  # the same adapter initialisation in both processes
    model = models.add_lora(models.load_base(args.base), params.lora)
    model.train()
    if args.mode == "packed":
        order = sorted(range(len(encoded)), key=lambda i: encoded[i].input_ids)  # by prompt, as packing batches
        batches = [[encoded[i] for i in order[k:k + args.pack_batch]] for k in range(0, len(order), args.pack_batch)]
        passes = lambda examples: packing.packed_passes(examples, tokenizer.pad_token_id)  # noqa: E731
    else:
        batches = [encoded[k:k + train.batch_size] for k in range(0, len(encoded), train.batch_size)]
        passes = lambda examples: [collate(examples, tokenizer.pad_token_id)]  # noqa: E731
    def forward_backward(examples: list) -> tuple[float, int]:
        loss, answers = 0.0, 0
        for batch in passes(examples):
            summed, count = answer_loss_sum(model, batch)
            summed.backward()
            loss, answers = loss + summed.item(), answers + count
        return loss, answers

    forward_backward(batches[0])  # warm-up, untimed: a first pass's allocations and kernel choices
    model.zero_grad(set_to_none=True)
    loss, answers = 0.0, 0
    start = time.perf_counter()
    for examples in batches:
        summed, count = forward_backward(examples)
        loss, answers = loss + summed, answers + count
    seconds = time.perf_counter() - start
    gradient = [p.grad.flatten() for p in model.parameters() if p.requires_grad]
    args.result.write_text(json.dumps({
        "seconds": seconds, "loss": loss, "answers": answers, "examples": len(encoded),
        "micro_batches": len(batches), "tokens": sum(len(e.input_ids) for e in encoded),
        "gradient": torch.cat(gradient).tolist()}))


def run(args, task: str, mode: str) -> dict:
    """The worker in a child process; its peak resident memory from the kernel's accounting."""
    result = Path(tempfile.mkstemp(suffix=".json")[1])
    command = [sys.executable, __file__, "--worker", "--task", task, "--mode", mode, "--result", str(result),
               "--data", str(args.data), "--base", str(args.base), "--limit", str(args.limit),
               "--pack-batch", str(args.pack_batch), "--questions-per-body", str(args.questions_per_body),
               *(["--whole-answers"] if args.whole_answers else [])]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{task} under {mode} failed (exit {child.returncode})")
    return {**json.loads(result.read_text()), "peak_gb": usage.ru_maxrss / 1e6}  # ru_maxrss: KiB on Linux


def compare_evaluation(args) -> None:
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


def compare_training(args) -> None:
    import torch

    print("| task | examples | tokens | micro-batches unpacked -> packed | unpacked s | packed s "
          "| packed / unpacked examples/s | peak GB unpacked -> packed | loss | gradient |\n"
          "|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for task in args.tasks:
        unpacked, packed = run(args, task, "unpacked"), run(args, task, "packed")
        loss_same = abs(packed["loss"] - unpacked["loss"]) <= 1e-4 * abs(unpacked["loss"])
        a, b = torch.tensor(packed["gradient"]), torch.tensor(unpacked["gradient"])
        gradient_error = float((a - b).norm() / b.norm())  # float rounding of two kernels: ~1e-6 to 1e-4
        gradient_same = gradient_error <= 1e-3
        print(f"| {task} | {unpacked['examples']} | {unpacked['tokens']:,} | {unpacked['micro_batches']} -> "
              f"{packed['micro_batches']} | {unpacked['seconds']:.0f} | {packed['seconds']:.0f} "
              f"| {unpacked['seconds'] / packed['seconds']:.2f}x | {unpacked['peak_gb']:.2f} -> {packed['peak_gb']:.2f} "
              f"| {'equal' if loss_same else 'DIFFER'} ({unpacked['loss']:.4f}) "
              f"| {'equal' if gradient_same else 'DIFFER'} (relative error {gradient_error:.1e}) |",
              flush=True)
        if not (loss_same and gradient_same and packed["answers"] == unpacked["answers"]):
            sys.exit(f"{task}: packed training differs from unpacked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_DATA, help="FinLoRA's released files (or a share of them)")
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--limit", type=int, default=0, help="the first N prompts of each task; 0 = all")
    parser.add_argument("--questions-per-body", type=int, default=0, metavar="N",
                        help="XBRL tasks: rebuild FinLoRA's whole-file layout, each filing body of the share asked "
                             "the share's first N questions (FinLoRA's files: about 18); 0 = the prompts as released")
    parser.add_argument("--whole-answers", action="store_true",
                        help="answers run past their first line to the end token or the task's answer length, as "
                             "under the finlora-* protocols; the base model's strict answers mostly stop at once")
    parser.add_argument("--train", action="store_true", help="compare training unpacked and packed instead")
    parser.add_argument("--pack-batch", type=int, default=8,
                        help="examples a packed micro-batch holds (8: the FiNER and XBRL groups' global batch)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return train_worker(args) if args.mode in ("unpacked", "packed") else worker(args)
    print(f"data {args.data}, base {args.base}, {os.cpu_count()} CPUs")
    compare_training(args) if args.train else compare_evaluation(args)


if __name__ == "__main__":
    main()
