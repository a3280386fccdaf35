"""The development loop on real data: FinLoRA's released files (by default the development share
in ../shared/data/finlora-dev) through the pipeline's own code, download -> preprocess -> train ->
evaluate, for the embedded model. Prints per task the base model, the fine-tuned model (each seed
and the mean) and the training split's most common answer, accuracy and weighted F1, with times,
and McNemar's p of each seed's adapter against the most common answer, paired per example.

    python bench/dev_real.py                                   # params.yaml's settings, one seed
    python bench/dev_real.py --groups sentiment --seeds 1 2 3 -S lora.rank=8 -S train.lr=5e-4

Settings come from params.yaml with `-S key=value` changes, as `dvc exp run -S` takes them. Data
sizes default to 400 train / 200 test per task at most. Results go to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

from finlora import models, sources
from finlora.config import with_changes
from finlora.compare import compare_runs, correctness
from finlora.evaluation import evaluate
from finlora.files import read_jsonl, write_json, write_jsonl
from finlora.metrics import TaskScores
from finlora.mixing import training_examples
from finlora.prepare import fits_in, prepare
from finlora.tasks import get_task
from finlora.training import train

DEV_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "finlora-dev"
GROUPS = {"sentiment": ["fpb", "fiqa", "tfns", "nwgi"], "ner": ["ner"], "finer": ["finer"],
          "xbrl": ["xbrl_tags", "xbrl_value"],  # headline: FinLoRA's development share has none
          **{task: [task] for task in ("formula", "xbrl_term", "financebench", "xbrl_formula", "fnxl")}}


def changes_from(settings: list[str]) -> dict:
    """`-S a.b=value` settings as params changes (values read as YAML: numbers, lists, booleans)."""
    changes: dict = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        section, _, name = key.partition(".")
        changes.setdefault(section, {})[name] = yaml.safe_load(value)
    return changes


def prepare_group(params, group: str, work: Path, base: Path) -> None:
    """download + preprocess of one group's tasks into work/prepared/<task>/, as the stages do."""
    tokenizer = models.load_tokenizer(base, params.model.chat_template)
    fits = fits_in(tokenizer, params.train.max_seq_len, params.model.chat_template)
    for name in params.tasks[group]:
        task = get_task(name)
        raw = sources.fetch(task, params.data)
        folder = work / "prepared" / name
        if raw.tag_names is not None:
            write_json(folder / "tags.json", raw.tag_names)
        stats = {}
        for split, rows in raw.splits.items():
            prepared = prepare(task, rows, Path(name) / split, params, raw.tag_names, None, fits)
            write_jsonl(folder / f"{split}.jsonl", prepared.records)
            stats[split] = prepared.stats()
        write_json(folder / "stats.json", stats)


def earlier_base_scores(earlier: Path, work: Path, tasks: list[str]) -> dict[str, dict]:
    """The base model's scores from an earlier run's --out, for test prompts identical to this run's
    (the base model does not depend on the seed or on training settings; XBRL's take 20 minutes)."""
    for task in tasks:
        test = Path("prepared") / task / "test.jsonl"
        if (earlier / test).read_bytes() != (work / test).read_bytes():
            sys.exit(f"--base-from {earlier}: its {test} differs from this run's; evaluate the base model again")
    shutil.copytree(earlier / "pred" / "base", work / "pred" / "base", dirs_exist_ok=True)
    return {task: json.loads((earlier / "eval" / "base" / f"{task}.json").read_text()) for task in tasks}


def p_vs_majority(work: Path, task: str, seed: int) -> float:
    """McNemar's exact p of a seed's adapter against the most common answer, paired per example
    (finlora.compare, as the report's "Is the gain real?")."""
    bar = correctness(read_jsonl(work / "pred" / "base" / f"{task}.jsonl"), "most_common_correct")
    adapter = correctness(read_jsonl(work / "pred" / f"lora-{seed}" / f"{task}.jsonl"))
    return compare_runs(bar, adapter, task).p_value


def run(args) -> dict:
    changes = changes_from(args.set)
    changes["data"] = {"source": "finlora", "local_dir": str(args.data), "train_size": args.train_size,
                       "test_size": args.test_size, "sizes": {}, **changes.get("data", {})}
    changes["tasks"] = {group: GROUPS[group] for group in args.groups}
    changes["tasks"].update(dict((name, tasks.split(",")) for name, _, tasks in (g.partition("=") for g in args.group)))
    work = args.out
    work.mkdir(parents=True, exist_ok=True)
    snapshot = work / "params.yaml"  # the settings as the run started, whatever params.yaml becomes meanwhile
    shutil.copy("params.yaml", snapshot)
    params = with_changes(changes, snapshot)
    base = Path(".cache/finlora/dev/base")
    if not base.is_dir():
        models.materialize_base(params.model.base, base)
    results: dict = {"settings": args.set, "seeds": args.seeds, "tasks": {}}
    for group, tasks in params.tasks.items():
        prepare_group(params.for_group(group), group, work, base)
        if args.base_from:
            scores = earlier_base_scores(args.base_from, work, tasks)
            base_seconds = json.loads((args.base_from / "results.json").read_text())["tasks"][tasks[0]]["base_eval_s"]
        else:
            start = time.perf_counter()
            scores = evaluate(params, tasks, base, None, work / "prepared", work / "pred" / "base",
                              work / "eval" / "base", work / "confusion" / "base", progress_key=f"dev-base-{group}")
            base_seconds = time.perf_counter() - start
        for task in tasks:
            bar = scores[task]["most_common_answer"]  # the base model's evaluation scores the bar
            results["tasks"][task] = {"base": scores[task], "majority": TaskScores.of(bar).headline[1], "lora": [],
                                      "base_eval_s": round(base_seconds, 1), "few_shot": {}}
        for k in args.shots:
            start = time.perf_counter()
            shown = evaluate(params, tasks, base, None, work / "prepared", work / "pred" / f"shots-{k}",
                             work / "eval" / f"shots-{k}", work / "confusion" / f"shots-{k}",
                             progress_key=f"dev-shots-{group}-{k}", shots=k)
            for task in tasks:
                results["tasks"][task]["few_shot"][k] = {**shown[task], "eval_s": round(time.perf_counter() - start, 1)}
        for seed in args.seeds:
            seeded = with_changes({**changes, "train": {**changes.get("train", {}), "seeds": [seed]}}, snapshot)
            records, validation = training_examples(
                {task: read_jsonl(work / "prepared" / task / "train.jsonl") for task in tasks}, seeded.train)
            adapter = work / "adapters" / f"{group}-{seed}"
            last = work / "adapters" / f"{group}-{seed}-last" if args.compare_last else None
            trained = train(seeded.for_group(group), records, base, adapter, work / "train" / f"{group}-{seed}.json",
                            None, validation=validation, last_adapter_out=last)
            start = time.perf_counter()
            scores = evaluate(seeded, tasks, base, adapter, work / "prepared", work / "pred" / f"lora-{seed}",
                              work / "eval" / f"lora-{seed}", work / "confusion" / f"lora-{seed}",
                              progress_key=f"dev-lora-{group}-{seed}")
            eval_s = round(time.perf_counter() - start, 1)
            last_scores = evaluate(seeded, tasks, base, last, work / "prepared", work / "pred" / f"last-{seed}",
                                   work / "eval" / f"last-{seed}", work / "confusion" / f"last-{seed}",
                                   progress_key=f"dev-last-{group}-{seed}") if last else {}
            for task in tasks:
                results["tasks"][task]["lora"].append({"seed": seed, **scores[task], "train_s": trained["wall_s"],
                                                       **{key: trained[key] for key in ("steps", "kept_step", "val_accuracy")},
                                                       "eval_s": eval_s, "p_vs_majority": p_vs_majority(work, task, seed)})
                if last:
                    results["tasks"][task].setdefault("last_step", []).append({"seed": seed, **last_scores[task]})
        write_json(work / "results.json", results)
    return results


def table(results: dict) -> str:
    """Markdown: accuracy % (weighted F1) of base, each seed, their mean, and the most common training
    answer with McNemar's p of each seed's adapter against it."""
    seeds = results["seeds"]
    shots = sorted({k for entry in results["tasks"].values() for k in entry.get("few_shot", {})}, key=int)
    lines = ["| task | base | " + "".join(f"base {k}-shot | " for k in shots) + " | ".join(f"LoRA seed {s}" for s in seeds)
             + " | LoRA mean (sd) | majority | p vs majority, per seed | gain | train s | eval s |",
             "|---" * (len(seeds) + len(shots) + 8) + "|"]
    for task, entry in results["tasks"].items():
        accuracy = [100 * TaskScores.of(run).headline[1] for run in entry["lora"]]
        mean = statistics.mean(accuracy)
        spread = f" ({statistics.stdev(accuracy):.1f})" if len(accuracy) > 1 else ""
        if "last_step" in entry:
            last = [100 * TaskScores.of(run).headline[1] for run in entry["last_step"]]
            spread += "; last step " + " / ".join(f"{a:.1f}" for a in last) + f", mean {statistics.mean(last):.1f}"
        p_values = " / ".join(f"{run['p_vs_majority']:.2g}" for run in entry["lora"])
        lines.append(
            f"| {task} | {cell(entry['base'])} | "
            + "".join(f"{cell(entry['few_shot'][k]) if entry['few_shot'][k]['n'] else 'too long'} | " for k in shots)
            + " | ".join(cell(run) for run in entry["lora"])
            + f" | {mean:.1f}{spread} | {100 * entry['majority']:.1f} | {p_values} "
            f"| {mean - 100 * TaskScores.of(entry['base']).headline[1]:+.1f} "
            f"| {statistics.mean(run['train_s'] for run in entry['lora']):.0f} "
            f"| {statistics.mean(run['eval_s'] for run in entry['lora']):.0f} |")
    return "\n".join(lines)


def cell(scores: dict) -> str:
    """Strict accuracy % (weighted F1); free text ROUGE-L % (BERTScore F1)."""
    headline = TaskScores.of(scores)
    second = headline.f1_weighted if headline.f1_weighted is not None else headline.bertscore_f1
    return f"{100 * headline.headline[1]:.1f}" + (f" ({second:.3f})" if second is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_DATA, help="FinLoRA data folder (default: %(default)s)")
    parser.add_argument("--groups", nargs="*", default=list(GROUPS), choices=list(GROUPS))
    parser.add_argument("--group", action="append", default=[], metavar="NAME=TASK,TASK",
                        help="a task group of your own, e.g. tweets=tfns")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42], help="training seeds (each one train.seeds entry)")
    parser.add_argument("--train-size", type=int, default=400)
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("-S", "--set", action="append", default=[], help="params change, e.g. lora.rank=8")
    parser.add_argument("--out", type=Path, default=Path(".cache/finlora/dev/run"))
    parser.add_argument("--base-from", type=Path, metavar="OUT",
                        help="take the base model's scores from an earlier run's --out "
                             "(same test prompts and eval.* settings)")
    parser.add_argument("--shots", nargs="*", type=int, default=[],
                        help="also evaluate the base model with k train examples before each prompt, each k given")
    parser.add_argument("--compare-last", action="store_true",
                        help="with train.keep_best, also evaluate each training's last-step adapter")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: not found; give --data a FinLoRA data folder")
    start = time.perf_counter()
    results = run(args)
    print(table(results))
    print(f"\nsettings: {' '.join(args.set) or 'params.yaml'}; {time.perf_counter() - start:.0f} s in all; "
          f"strict accuracy %, weighted F1 in brackets -> {args.out / 'results.json'}")
    print(json.dumps({task: [TaskScores.of(run).headline[1] for run in entry["lora"]]
                      for task, entry in results["tasks"].items()}))


if __name__ == "__main__":
    main()
