"""The report: FinLoRA's Table 3 (accuracy / F1 per task, base vs fine-tuned) and the
resource columns of its Tables 4/5; one small metrics file per task for `dvc metrics show/diff`
(a row each, the same few columns: `task_metrics`); and metrics/summary.json beside them with
everything (spreads over seeds, every score, training resources).

With several training seeds (train.seeds) an adapter's scores are their mean, and each task gets
the standard deviation and a 95 % interval of the mean over seeds (Student's t). With few_shot.shots,
the base model shown k train examples before each prompt gets a row per k beside the zero-shot one,
and a paired test against the adapter.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from finlora.config import Params
from finlora import layout
from finlora.compare import (Comparison, answered_by_both, compare_runs, correctness, run_correctness, run_model,
                             shots_of)
from finlora.compare import table as compare_table
from finlora.files import read_json, read_jsonl
from finlora.metrics import TaskScores
from finlora.protocols import PROTOCOLS
from finlora.tasks import get_task

MODELS = ("base", "lora")
PAPER_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# FinLoRA's Table 3 for Llama-3.1-8B-Instruct: accuracy % and weighted F1 (None: not given), by
# "base" and by (quant bits, LoRA rank) of the paper's two adapter settings.
PAPER_TABLE3: dict = {
    "base": {"fpb": (68.73, .677), "fiqa": (46.55, .557), "tfns": (69.97, .683), "nwgi": (46.58, .412),
             "ner": (48.89, .569), "headline": (45.34, .558), "xbrl_tags": (79.37, None),
             "xbrl_value": (55.26, None), "finer": (2.85, None)},
    (4, 4): {"fpb": (86.30, .860), "fiqa": (73.09, .781), "tfns": (88.27, .882), "nwgi": (80.95, .803),
             "ner": (96.63, .966), "headline": (88.03, .886), "xbrl_tags": (95.00, None),
             "xbrl_value": (96.05, None), "finer": (70.45, None)},
    (8, 8): {"fpb": (82.84, .830), "fiqa": (80.36, .818), "tfns": (84.05, .844), "nwgi": (83.96, .849),
             "ner": (98.05, .981), "headline": (84.66, .852), "xbrl_tags": (94.37, None),
             "xbrl_value": (97.36, None), "finer": (75.21, None)},
}
SEED_SCORES = ("accuracy", "strict_accuracy", "rouge_l", "bertscore_f1")  # spread over training seeds
GAIN_SCORES = ("accuracy", "rouge_l", "bertscore_f1")  # adapter - base model
# summary.json's training resources; the per-group train metrics files keep everything else.
SUMMARY_TRAIN_KEYS = ("final_loss", "val_accuracy", "kept_step", "wall_s", "tokens_per_s", "peak_memory_gb",
                      "adapter_bytes", "trainable_params", "lora_rank", "quant_bits")


def provenance(params: Params, raw_dir: Path) -> dict[str, dict]:
    """Each task's source.json, written by download: source, origin, sizes, file hashes."""
    return {task: read_json(raw_dir / group / task / "source.json")
            for group, tasks in params.tasks.items() for task in tasks}


def collect(params: Params, metrics_dir: Path) -> dict:
    """Every metrics file: {task: {"base", "lora" (mean over seeds), "seeds", "gain", "few_shot": {k:
    the base model's k-shot metrics}}, ..., "train": {group: resources, averaged over seeds}}."""
    results: dict = {}
    for group, tasks in params.tasks.items():
        for task in tasks:
            by_seed = {seed: read_json(layout.eval_metrics("lora", group, seed, metrics_dir) / f"{task}.json")
                       for seed in params.train.seeds}
            entry = {"base": read_json(metrics_dir / "eval" / "base" / group / f"{task}.json"),
                     "lora": mean_of(list(by_seed.values()))}
            entry["seeds"] = {score: {seed: m[score] for seed, m in by_seed.items()}
                              for score in SEED_SCORES if score in entry["lora"]}
            entry["gain"] = {score: round(entry["lora"][score] - entry["base"][score], 4)
                             for score in GAIN_SCORES if score in entry["lora"] and score in entry["base"]}
            entry["few_shot"] = {k: read_json(layout.eval_metrics("few_shot", group, k, metrics_dir) / f"{task}.json")
                                 for k in params.few_shot.shots}
            results[task] = entry
    results["train"] = {group: mean_of([read_json(layout.train_metrics(group, seed, metrics_dir))
                                        for seed in params.train.seeds]) for group in params.tasks}
    return results


def mean_of(runs: list[dict]) -> dict:
    """One dict for several seeds' metrics: a number the seeds disagree on is their mean, any other
    value the first seed's."""
    merged = {}
    for key, first in runs[0].items():
        values = [run[key] for run in runs]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        merged[key] = round(statistics.mean(values), 4) if numeric and len(set(values)) > 1 else first
    return merged


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation and the 95 % interval of the mean (Student's t with n - 1
    degrees of freedom) of one score over seeds; one seed gives the mean alone."""
    result = {"n": len(values), "mean": round(statistics.mean(values), 4)}
    if len(values) > 1:
        from scipy.stats import t

        sd = statistics.stdev(values)
        half = float(t.ppf(0.975, len(values) - 1)) * sd / math.sqrt(len(values))
        result.update(sd=round(sd, 4), ci95_low=round(result["mean"] - half, 4), ci95_high=round(result["mean"] + half, 4))
    return result


def plot_files(params: Params, metrics_dir: Path) -> dict[str, bytes]:
    """The plots' data, gathered under one folder that holds nothing else (a plotted output folder
    of a stage also holds the .gitignore files DVC writes beside its cached outputs, which DVC's
    plots then fail to load): confusion/<model>/<task>.json (the adapter's of the first training
    seed) and train/<group>/seed-<seed>/<curve>.tsv, for the task groups params.yaml has now."""
    files = {}
    first_seed = params.train.seeds[0]
    for group, tasks in params.tasks.items():
        for model in MODELS:
            for task in tasks:
                confusion = layout.confusion(model, group, first_seed, metrics_dir) / f"{task}.json"
                if confusion.is_file():  # numbers (XBRL values) have no confusion matrix
                    files[f"confusion/{model}/{task}.json"] = confusion.read_bytes()
        for seed in params.train.seeds:
            folder = layout.run_folder("lora", group, seed)
            for curve in sorted((layout.train_live(group, seed, metrics_dir) / "plots" / "metrics").rglob("*.tsv")):
                name = curve.name if curve.parent.name == "train" else f"{curve.parent.name}_{curve.name}"
                files[f"train/{folder}/{name}"] = curve.read_bytes()  # loss.tsv, lr.tsv, val_loss.tsv, ...
    return files


def validation_table(params: Params, summary: dict) -> list[str]:
    """The held-out examples each group was validated on, and the step whose adapter was saved
    (means over seeds); nothing when no group held any out."""
    groups = [group for group in params.tasks if summary["train"][group]["val_examples"]]
    if not groups:
        return []
    choice = "the best validated step" if params.train.keep_best else "the last step"
    lines = ["", f"## Validation ({choice} kept)", "",
             "| group | held-out examples | step kept of steps | validation accuracy | validation loss |",
             "|---|---|---|---|---|"]
    for group in groups:
        train = summary["train"][group]
        lines.append(f"| {group} | {train['val_examples']} | {train['kept_step']:g} of {train['steps']} "
                     f"| {100 * train['val_accuracy']:.1f} | {train['val_loss']:.4f} |")
    return lines


def summarize(results: dict) -> dict:
    """metrics/summary.json: the readable subset, keyed task.model.metric and train.group.metric."""
    summary = {
        task: {**{model: TaskScores.of(entry[model]).as_dict() for model in MODELS},
               "seeds": {score: spread(list(by_seed.values())) for score, by_seed in entry["seeds"].items()},
               "gain": entry["gain"],
               **({"few_shot": {f"{k}-shot": TaskScores.of(scores).as_dict() for k, scores in entry["few_shot"].items()
                                if scores["n"]}} if entry["few_shot"] else {}),
               **({"most_common": TaskScores.of(entry["base"]["most_common_answer"]).as_dict()}
                  if "most_common_answer" in entry["base"] else {})}
        for task, entry in results.items() if task != "train"
    }
    summary["train"] = {group: {k: train[k] for k in SUMMARY_TRAIN_KEYS} for group, train in results["train"].items()}
    return summary


def task_metrics(params: Params, summary: dict) -> dict[str, dict]:
    """metrics/tasks/<task>.json, the same columns for every task, each score the report ranks it
    by (accuracy; free text ROUGE-L): base, lora (the mean over seeds), most_common (the training
    split's most common answer, every time), gain (lora - base); strict (the adapter's strict
    accuracy), f1 (its weighted F1), sd (over seeds, where several), trainable (its parameters)."""
    group_of = {task: group for group, tasks in params.tasks.items() for task in tasks}
    files = {}
    for task, entry in summary.items():
        if task == "train":
            continue
        lora = TaskScores.of(entry["lora"])
        score = "accuracy" if lora.accuracy is not None else "rouge_l"
        columns = {"base": entry["base"].get(score), "lora": getattr(lora, score),
                   "most_common": entry.get("most_common", {}).get(score), "gain": entry["gain"].get(score),
                   "strict": lora.strict_accuracy, "f1": lora.f1_weighted,
                   "sd": entry["seeds"].get(score, {}).get("sd"),
                   "trainable": summary["train"][group_of[task]]["trainable_params"]}
        files[task] = {name: value for name, value in columns.items() if value is not None}
    return files


def headlines(summary: dict) -> list[str]:
    """A few lines for the stage's log: each task's base -> adapter (most common answer)."""
    lines = []
    for task, entry in summary.items():
        if task == "train":
            continue
        lora = TaskScores.of(entry["lora"])
        name = "accuracy" if lora.accuracy is not None else "ROUGE-L"
        score = "accuracy" if lora.accuracy is not None else "rouge_l"
        bar = entry.get("most_common", {}).get(score)
        lines.append(f"  {task:<13} {name:<8} base {100 * entry['base'][score]:6.2f} -> adapter "
                     f"{100 * getattr(lora, score):6.2f}" + (f"  (most common answer {100 * bar:.2f})" if bar is not None
                                                              else ""))
    return lines


def adapter_label(params: Params, seed: int | None = None) -> str:
    """The adapters' row label: one training seed's, or the mean over train.seeds where several."""
    label = f"LoRA r{params.lora.rank}, {params.quant.bits}-bit" + (
        ", classification head" if params.model.head == "classify" else "")
    if seed is not None:
        return f"{label}, seed {seed}"
    seeds = len(params.train.seeds)
    return label + (f", mean of {seeds} seeds" if seeds > 1 else "")


def significance(params: Params, predictions_dir: Path, against: str = "base") -> list[Comparison]:
    """The adapter (the first training seed's) against `against` per task, paired over the same test
    examples (finlora.compare): the base model, most_common (the training split's most common
    answer, every time) or shots-K (the base model shown K train examples; a k-shot prompt too long
    for the model's context has no answer, so the pair is the examples both answered, and a task
    with none is left out)."""
    def rows(run: str, group: str, task: str) -> list[dict]:
        model, number = run_model(run, params.train.seeds[0])
        return read_jsonl(layout.predictions(model, group, number, predictions_dir) / f"{task}.jsonl")

    tests = []
    for group, tasks in params.tasks.items():
        for task in tasks:
            bar, adapter = rows(against, group, task), rows("workspace", group, task)
            if shots_of(against):
                bar, adapter = answered_by_both(bar, adapter)
            if bar:
                tests.append(compare_runs(run_correctness(against, bar), correctness(adapter), task))
    return tests


FORGETTING_SCORES = ("acc_norm", "acc", "exact_match")  # the one a benchmark is reported by, the first it has


def forgetting_results(params: Params, metrics_dir: Path) -> dict[str, dict]:
    """Each lm-eval task of forgetting.tasks: {"base": its metrics, group: the adapters' (mean over seeds)}."""
    return {benchmark: {"base": read_json(layout.forgetting(benchmark, root=metrics_dir)),
                        **{group: mean_of([read_json(layout.forgetting(benchmark, group, seed, metrics_dir))
                                           for seed in params.train.seeds]) for group in params.tasks}}
            for benchmark in params.forgetting.tasks}


def forgetting_table(found: dict[str, dict]) -> list[str]:
    """The report's forgetting section: per benchmark and group, the base score, the adapter's and
    the change, its standard error the two scores' combined as if independent (sqrt(se1^2 + se2^2))."""
    if not found:
        return []
    lines = ["", "## Forgetting: general benchmarks (lm-evaluation-harness)", "",
             "Each adapter against the base model on tasks outside FinLoRA's; the change's standard error "
             "combines the two scores' standard errors as if independent (the examples are shared, so it is "
             "an upper bound for a positively correlated pair).", "",
             "| benchmark | metric | n | group | base | adapter | change | standard error |", "|---|---|---|---|---|---|---|---|"]
    for benchmark, runs in found.items():
        base = runs["base"]
        metric = next(name for name in FORGETTING_SCORES if name in base)
        for group, adapter in runs.items():
            if group == "base":
                continue
            error = math.sqrt(base.get(f"{metric}_stderr", 0) ** 2 + adapter.get(f"{metric}_stderr", 0) ** 2)
            lines.append(f"| {benchmark} | {metric} | {base['n']} | {group} | {100 * base[metric]:.2f} "
                         f"| {100 * adapter[metric]:.2f} | {100 * (adapter[metric] - base[metric]):+.2f} | {100 * error:.2f} |")
    return lines


def render(params: Params, summary: dict, sources: dict[str, dict], tests: list[Comparison] = (),
           bar_tests: list[Comparison] = (), few_shot_tests: dict[int, list[Comparison]] | None = None,
           forgetting: dict[str, dict] | None = None) -> str:
    """The report; `tests` pair the adapter with the base model, `bar_tests` with the training
    split's most common answer, `few_shot_tests` with the base model shown k examples
    (significance); `forgetting` the lm-eval scores (forgetting_results)."""
    tasks = params.all_tasks
    lines = [
        "# FinLoRA results",
        "",
        f"Base model `{params.model.base}`; data source `{params.data.source}` "
        f"({_sizes_text(params)}); adapters: {adapter_label(params)}, alpha {params.lora.alpha}, "
        f"targets {', '.join(params.lora.target_modules)}, lr {params.train.lr}, {params.train.epochs} epoch(s)."
        + (" Prompts name their task first (`model.task_marker`)." if params.model.task_marker else ""),
    ]
    if params.data.source == "sample":
        lines.append("These numbers come from the project's generated sample data, not the paper's data sets: "
                     "compare them with each other, not with the paper.")
    paper = paper_setting(params)
    lines += ["", "## Accuracy / weighted F1 (Table 3)", "",
              f"Evaluation protocol `{params.eval.protocol}`. {PROTOCOLS[params.eval.protocol].describe}", "",
              "| model | " + " | ".join(get_task(t).column for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for model, label in (("base", "base"), ("lora", adapter_label(params))):
        cells = [TaskScores.of(summary[t][model]).cell() for t in tasks]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if paper:
            published = PAPER_TABLE3["base" if model == "base" else paper]
            lines.append(f"| {label}, paper | " + " | ".join(_paper_cell(published.get(t)) for t in tasks) + " |")
            lines.append(f"| {label}, ours - paper (points) | " + " | ".join(
                f"{100 * summary[t][model]['accuracy'] - published[t][0]:+.2f}" if t in published else ""
                for t in tasks) + " |")
        strict = [_percent(summary[t][model].get("strict_accuracy")) for t in tasks]
        lines.append(f"| {label}, strict accuracy | " + " | ".join(strict) + " |")
        invalid = [f"{100 * summary[t][model]['invalid_rate']:.2f}" for t in tasks]
        lines.append(f"| {label}, invalid answers (%) | " + " | ".join(invalid) + " |")
        if model == "base":
            lines += few_shot_rows(params, summary, tasks)
    if all("most_common_answer" in summary[t]["base"] for t in tasks):
        lines.append("| the training split's most common answer, every time: strict accuracy (free text: ROUGE-L) | "
                     + " | ".join(_percent(TaskScores.of(summary[t]["base"]["most_common_answer"]).headline[1])
                                  for t in tasks) + " |")
    gains = [f"{100 * summary[t]['gain']['accuracy']:+.2f}" if "accuracy" in summary[t]["gain"]
             else f"R-L {100 * summary[t]['gain']['rouge_l']:+.2f}" for t in tasks]
    scored = [t for t in tasks if "accuracy" in summary[t]["gain"]]
    lines += ["| accuracy gain (points) | " + " | ".join(gains) + " |", ""]
    if scored:
        mean_gain = 100 * sum(summary[t]["gain"]["accuracy"] for t in scored) / len(scored)
        lines += [f"Average accuracy gain over the base model: {mean_gain:+.2f} points over {len(scored)} tasks"
                  + (f" (paper, same tasks: {_paper_gain(paper, scored):+.2f})." if paper else "."), ""]
    if len(params.train.seeds) > 1:
        lines += seeds_table(params, summary)
    first_seed = adapter_label(params, params.train.seeds[0])
    if tests:
        lines += ["## Is the gain real?", "", compare_table(list(tests), "base", first_seed)]
    if bar_tests:
        lines += ["### Does the adapter beat the most common answer?", "",
                  compare_table(list(bar_tests), "the training split's most common answer, every time", first_seed)]
    for k, k_tests in (few_shot_tests or {}).items():
        lines += [f"### Does the adapter beat the base model shown {k} train example{'s' if k > 1 else ''}?", "",
                  compare_table(k_tests, f"base, {k}-shot", first_seed)]
    lines += forgetting_table(forgetting or {})
    lines += ["## Resources (Tables 4/5)", "",
              "| group | tasks | batch per device x devices | peak memory (GB) | device-hours | train wall (s) "
              "| tokens/s | adapter (MB) | eval s/example |",
              "|---|---|---|---|---|---|---|---|---|"]
    for group, group_tasks in params.tasks.items():
        train = summary["train"][group]
        per_example = sum(summary[t]["lora"]["seconds_per_example"] for t in group_tasks) / len(group_tasks)
        lines.append(
            f"| {group} | {', '.join(group_tasks)} | {train['batch_size_per_device']} x {train['world_size']} "
            f"| {train['peak_memory_gb']:.2f} ({train['peak_memory_kind']}) | {train['device_hours']:.4f} "
            f"| {train['wall_s']:.0f} | {train['tokens_per_s']:.0f} | {train['adapter_bytes'] / 1e6:.2f} "
            f"| {per_example:.3f} |")
    lines += validation_table(params, summary)
    lines += ["", "## Data provenance", "",
              "| task | source | origin | train | test | sha256 of train / test (first 12) |", "|---|---|---|---|---|---|"]
    for task in tasks:
        source = sources[task]
        hashes = source.get("sha256", {})
        lines.append(f"| {task} | {source['source']} | {_origin(source)} | {source['train']} | {source['test']} "
                     f"| {hashes.get('train.jsonl', '')[:12]} / {hashes.get('test.jsonl', '')[:12]} |")
    return "\n".join(lines) + "\n"


def few_shot_rows(params: Params, results: dict, tasks: list[str]) -> list[str]:
    """Table 3's rows of the base model shown k train examples before each prompt, one per k, and
    the test prompts each left out as too long for the model's context, where any."""
    lines = []
    for k in params.few_shot.shots:
        runs = [results[t]["few_shot"][k] for t in tasks]
        lines.append(f"| base, {k}-shot | " + " | ".join(TaskScores.of(run).cell() if run["n"] else "too long"
                                                          for run in runs) + " |")
        if any(run["skipped_too_long"] for run in runs):
            lines.append(f"| base, {k}-shot: test prompts left out as too long | "
                         + " | ".join(str(run["skipped_too_long"]) for run in runs) + " |")
    return lines


def seeds_table(params: Params, results: dict) -> list[str]:
    """Each task's accuracy per training seed, their mean, standard deviation and 95 % interval."""
    seeds = params.train.seeds
    lines = ["## Seeds", "", f"Accuracy % (free text: ROUGE-L) of the adapters of {len(seeds)} training seeds; the interval is the "
             "95 % interval of the mean over seeds (Student's t).", "",
             "| task | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean | sd | 95 % interval |",
             "|---" * (len(seeds) + 4) + "|"]
    for task in params.all_tasks:
        by_seed = results[task]["seeds"].get("accuracy") or results[task]["seeds"]["rouge_l"]
        stats = spread(list(by_seed.values()))
        lines.append(f"| {task} | " + " | ".join(f"{100 * by_seed[seed]:.2f}" for seed in seeds)
                     + f" | {100 * stats['mean']:.2f} | {100 * stats['sd']:.2f} "
                     f"| {100 * stats['ci95_low']:.2f} to {100 * stats['ci95_high']:.2f} |")
    return lines + [""]


def paper_setting(params: Params) -> tuple[int, int] | None:
    """The paper's (bits, rank) setting this run matches (its model, quantisation and rank), if any."""
    setting = (params.quant.bits, params.lora.rank)
    return setting if params.model.base == PAPER_MODEL and setting in PAPER_TABLE3 else None


def _paper_cell(published: tuple[float, float | None] | None) -> str:
    if published is None:
        return ""
    accuracy, f1 = published
    return f"{accuracy:.2f}" + (f" / {f1:.3f}" if f1 is not None else "")


def _paper_gain(setting: tuple[int, int], tasks: list[str]) -> float:
    known = [t for t in tasks if t in PAPER_TABLE3[setting]]
    return sum(PAPER_TABLE3[setting][t][0] - PAPER_TABLE3["base"][t][0] for t in known) / max(1, len(known))


def _origin(source: dict) -> str:
    """Where a task's rows came from, as its source described it at download."""
    return source.get("provenance") or source["source"]


def _percent(score: float | None) -> str:
    return "" if score is None else f"{100 * score:.2f}"


def _sizes_text(params: Params) -> str:
    text = f"up to {params.data.train_size} train / {params.data.test_size} test per task"
    overrides = ", ".join(f"{task} {s.train}/{s.test}" for task, s in params.data.sizes.items())
    return f"{text}; {overrides}" if overrides else text
