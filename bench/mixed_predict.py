"""Many adapters on one base: requests of mixed tasks answered by `finlora.predict.predict_mixed`
(the base loaded once with every group's adapter, batches mixing adapters) against the way
without it, loading the base and the request's adapter for each request (`predict` a request at a
time). Adapters are freshly initialised LoRA weights (random, nonzero B) on the embedded model, one
per task group of params.yaml with labelled tasks: the speed does not depend on what they learned. The per-request
baseline is timed on the first --baseline requests and given per request.

    python bench/mixed_predict.py                       # 500 requests over every group's task
    python bench/mixed_predict.py --requests 100 --baseline 10
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from finlora import models, samples
from finlora.config import load_params
from finlora.predict import predict, predict_mixed
from finlora.prompts import build_context
from finlora.tasks import TASKS


def random_adapter(base: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter of the params' shape whose weights are random (peft init_lora_weights=False)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(models.load_base(base), LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                                               init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    models.write_adapter_origin(out, base)
    return out


def requests(params, n: int, seed: int) -> list[dict]:
    """n requests of the labelled tasks of params.yaml's groups, each a sample test prompt, the
    tasks drawn seeded."""
    tasks = [task for task in params.all_tasks if TASKS[task].labels]
    rows = {task: samples.generate(task, 1, n, seed)["splits"]["test"] for task in tasks}
    rng = random.Random(seed)
    picked = [rng.choice(tasks) for _ in range(n)]
    return [{"task": task, "context": build_context(TASKS[task].example(rows[task][i]))} for i, task in enumerate(picked)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=20, help="requests timed a request at a time")
    parser.add_argument("--base", type=Path, default=Path(".cache/finlora/dev/base"))
    args = parser.parse_args()
    params = load_params()
    if not args.base.is_dir():
        models.materialize_base(params.model.base, args.base)
    asked = requests(params, args.requests, seed=0)
    groups = {task: group for group, tasks in params.tasks.items() for task in tasks}
    with tempfile.TemporaryDirectory() as tmp:
        used = sorted({groups[r["task"]] for r in asked})
        adapters = {group: random_adapter(args.base, Path(tmp) / group, i) for i, group in enumerate(used)}
        start = time.perf_counter()
        mixed = predict_mixed(params, asked, args.base, adapters)
        mixed_s = time.perf_counter() - start
        start = time.perf_counter()
        alone = [predict(params, r["task"], [r], args.base, adapters[groups[r["task"]]])[0] for r in asked[:args.baseline]]
        alone_s = (time.perf_counter() - start) / args.baseline
    same = sum(a["answer"] == m["answer"] for a, m in zip(alone, mixed))
    print(f"{args.requests} requests over {len(used)} adapters ({', '.join(used)}), eval.batch_size {params.eval.batch_size}")
    print(f"one base, adapters mixed in a batch: {mixed_s:.1f} s, {args.requests / mixed_s:.2f} requests/s")
    print(f"base + adapter loaded per request ({args.baseline} timed): {alone_s:.2f} s a request, "
          f"{1 / alone_s:.2f} requests/s")
    print(f"ratio: {alone_s * args.requests / mixed_s:.1f}x; answers equal on {same} of {len(alone)} compared")


if __name__ == "__main__":
    main()
