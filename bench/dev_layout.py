"""FinLoRA's development share laid out as FinLoRA's current repository lays it out: each sentiment
task's records split (seeded, as `data.source: finlora` carves a test file: half train, half test),
the train halves written one after another into `train/finlora_sentiment_train.jsonl` in FinLoRA's
order (FPB, FiQA, TFNS, NWGI, as data/process_sentiment_train.py writes them), the test halves into
`test/<task>_test.jsonl`; every other file copied as it is. Then checks how the pipeline's reader
attributes the combined file against the truth, and prints it.

    python bench/dev_layout.py .cache/finlora/dev/current
    python bench/dev_real.py --data .cache/finlora/dev/current --groups sentiment --seeds 1 2 3
    python bench/dev_layout.py --splits 200      # attribution over 200 seeded splits, no files kept
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from finlora.files import read_jsonl, write_jsonl
from finlora.sources.combined import read_sentiment
from finlora.sources.released import carve

DEV_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "finlora-dev" / "data"
ORDER = ("fpb", "fiqa", "tfns", "nwgi")  # FinLoRA's order in the combined file


def lay_out(dev: Path, out: Path, seed: int, fraction: float) -> dict[str, list[dict]]:
    """Writes the layout under out/; returns each task's train half, in the file's order."""
    shutil.copytree(dev, out, dirs_exist_ok=True)
    halves = {}
    for task in ORDER:
        train, test = carve(list(read_jsonl(dev / "test" / f"{task}_test.jsonl")), fraction, seed)
        halves[task] = train
        write_jsonl(out / "test" / f"{task}_test.jsonl", test)
    write_jsonl(out / "train" / "finlora_sentiment_train.jsonl", [row for task in ORDER for row in halves[task]])
    return halves


def attribution_errors(halves: dict[str, list[dict]]) -> tuple[Counter, Counter, dict]:
    """(records read as another task's, by true -> read task; left out, by true task; how read)."""
    truth = [task for task in ORDER for _ in halves[task]]
    read = read_sentiment([row for task in ORDER for row in halves[task]])
    wrong = Counter(f"{true} -> {got}" for true, got in zip(truth, read.tasks) if got is not None and got != true)
    left_out = Counter(true for true, got in zip(truth, read.tasks) if got is None)
    return wrong, left_out, read.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, nargs="?", help="folder to write the layout to")
    parser.add_argument("--dev", type=Path, default=DEV_DATA, help="the development share's data/ (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="the split's seed (data.seed's default)")
    parser.add_argument("--fraction", type=float, default=0.5, help="the test share (data.carved_test_fraction)")
    parser.add_argument("--splits", type=int, default=0, help="check attribution over this many seeded splits")
    args = parser.parse_args()
    if args.out:
        halves = lay_out(args.dev, args.out, args.seed, args.fraction)
        wrong, left_out, summary = attribution_errors(halves)
        print(json.dumps({"train records": {task: len(rows) for task, rows in halves.items()}, "read": summary,
                          "read as another task's": dict(wrong), "left out": dict(left_out)}, indent=1))
    if args.splits:
        wrong_total, left_total = Counter(), Counter()
        with tempfile.TemporaryDirectory() as scratch:
            for seed in range(args.splits):
                halves = lay_out(args.dev, Path(scratch) / str(seed), seed, args.fraction)
                wrong, left_out, _ = attribution_errors(halves)
                wrong_total.update(wrong)
                left_total.update(left_out)
        print(f"over {args.splits} seeded splits: read as another task's {dict(wrong_total) or 0}; "
              f"left out {dict(left_total) or 0} (records in all)")


if __name__ == "__main__":
    main()
