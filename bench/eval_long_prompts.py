"""Evaluation on long prompts: generation in batches capped at `eval.batch_tokens` against the same
generation uncapped (batches of `eval.batch_size`, each padded to its longest prompt, as before the
cap), on FinLoRA's real XBRL test prompts (3,600-7,800 tokens), with the answers asserted identical.

    python bench/eval_long_prompts.py [--data ../shared/data/finlora-dev] [--base models/base]

Settings (batch size, token cap, answer lengths) come from params.yaml. Both tasks take about
half an hour on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dev_real import DEV_DATA, prepare_group
from finlora import models
from finlora.config import with_changes
from finlora.files import read_jsonl
from finlora.generation import generate_answers
from finlora.prompts import prompt_ids
from finlora.protocols import answer_length

TASKS = ["xbrl_tags", "xbrl_value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_DATA, help="FinLoRA's released files (or a share of them)")
    parser.add_argument("--base", type=Path, default=Path("models/base"))
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    args = parser.parse_args()

    params = with_changes({"data": {"source": "finlora", "local_dir": str(args.data), "test_size": 200}})
    params = params.for_group("xbrl")
    work = Path(tempfile.mkdtemp())
    prepare_group(params, "xbrl", work, args.base)
    tokenizer = models.load_tokenizer(args.base, params.model.chat_template)
    model = models.load_model(args.base, None, params.eval.bits)
    cap, batch_size = params.eval.batch_tokens, params.eval.batch_size

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {models.base_info(args.base)['base']}, "
          f"eval.batch_size {batch_size}, eval.batch_tokens {cap}, data {args.data}")
    print("| task | prompts | prompt tokens (min-max) | uncapped s | capped s | capped / uncapped speed |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        prompts = [prompt_ids(tokenizer, r["context"], params.model.chat_template)
                   for r in read_jsonl(work / "prepared" / task / "test.jsonl")]
        new_tokens = answer_length(params.eval, task)
        timings, answers = {}, {}
        for name, batch_tokens in (("uncapped", None), ("capped", cap)):
            start = time.perf_counter()
            answers[name] = generate_answers(model, tokenizer, prompts, batch_size, new_tokens, progress=False,
                                             batch_tokens=batch_tokens).answers
            timings[name] = time.perf_counter() - start
        assert answers["capped"] == answers["uncapped"], f"{task}: capped and uncapped batches answer differently"
        lengths = sorted(map(len, prompts))
        print(f"| {task} | {len(prompts)} | {lengths[0]}-{lengths[-1]} | {timings['uncapped']:.0f} "
              f"| {timings['capped']:.0f} | {timings['uncapped'] / timings['capped']:.2f}x |", flush=True)
    print("answers identical: yes")


if __name__ == "__main__":
    main()
