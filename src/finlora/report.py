"""The report: FinLoRA's Table 3 (accuracy / F1 per task, base vs fine-tuned) and the
resource columns of its Tables 4/5, plus one summary file for `dvc metrics show/diff`."""

from __future__ import annotations

from pathlib import Path

from finlora.config import Params
from finlora.files import read_json
from finlora.tasks import get_task

MODELS = ("base", "lora")
# What `dvc metrics show/diff` compare; the per-task and per-group files keep everything else.
SUMMARY_EVAL_KEYS = ("accuracy", "strict_accuracy", "f1_weighted", "invalid_rate")
SUMMARY_TRAIN_KEYS = ("final_loss", "wall_s", "tokens_per_s", "peak_memory_gb", "adapter_bytes",
                      "trainable_params", "lora_rank", "quant_bits")


def provenance(params: Params, raw_dir: Path) -> dict[str, dict]:
    """Each task's source.json, written by download: source, origin, sizes, file hashes."""
    return {task: read_json(raw_dir / group / task / "source.json")
            for group, tasks in params.tasks.items() for task in tasks}


def collect(params: Params, metrics_dir: Path) -> dict:
    """Every metrics file: {task: {model: scores, "gain": ...}, ..., "train": {group: resources}}."""
    results: dict = {}
    for group, tasks in params.tasks.items():
        for task in tasks:
            entry = {model: read_json(metrics_dir / "eval" / model / group / f"{task}.json") for model in MODELS}
            entry["gain"] = {"accuracy": round(entry["lora"]["accuracy"] - entry["base"]["accuracy"], 4)}
            results[task] = entry
    results["train"] = {group: read_json(metrics_dir / "train" / f"{group}.json") for group in params.tasks}
    return results


def summarize(results: dict) -> dict:
    """metrics/summary.json: the readable subset, keyed task.model.metric and train.group.metric."""
    summary = {
        task: {**{model: {k: entry[model][k] for k in SUMMARY_EVAL_KEYS if k in entry[model]} for model in MODELS},
               "gain": entry["gain"]}
        for task, entry in results.items() if task != "train"
    }
    summary["train"] = {group: {k: train[k] for k in SUMMARY_TRAIN_KEYS} for group, train in results["train"].items()}
    return summary


def adapter_label(params: Params) -> str:
    return f"LoRA r{params.lora.rank}, {params.quant.bits}-bit"


def render(params: Params, summary: dict, sources: dict[str, dict]) -> str:
    tasks = params.all_tasks
    lines = [
        "# FinLoRA results",
        "",
        f"Base model `{params.model.base}`; data source `{params.data.source}` "
        f"({_sizes_text(params)}); adapters: {adapter_label(params)}, alpha {params.lora.alpha}, "
        f"targets {', '.join(params.lora.target_modules)}, lr {params.train.lr}, {params.train.epochs} epoch(s).",
    ]
    if params.data.source == "sample":
        lines.append("These numbers come from the project's generated sample data, not the paper's data sets: "
                     "compare them with each other, not with the paper.")
    lines += ["", "## Accuracy / weighted F1 (Table 3)", "",
              "Accuracy as in the paper (the gold label is contained in the answer); strict accuracy counts "
              "only answers whose first label is the gold one; invalid answers name no label at all. "
              "FiNER is scored per entity; Tags by normalised element name; Values as numbers (strict: "
              "numerically equal; no F1).", "",
              "| model | " + " | ".join(get_task(t).column for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for model, label in (("base", "base"), ("lora", adapter_label(params))):
        cells = [_accuracy_f1(summary[t][model]) for t in tasks]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        strict = [f"{100 * summary[t][model]['strict_accuracy']:.2f}" for t in tasks]
        lines.append(f"| {label}, strict accuracy | " + " | ".join(strict) + " |")
        invalid = [f"{100 * summary[t][model]['invalid_rate']:.2f}" for t in tasks]
        lines.append(f"| {label}, invalid answers (%) | " + " | ".join(invalid) + " |")
    gains = [f"{100 * summary[t]['gain']['accuracy']:+.2f}" for t in tasks]
    lines += ["| accuracy gain (points) | " + " | ".join(gains) + " |", "",
              "## Resources (Tables 4/5)", "",
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
    lines += ["", "## Data provenance", "",
              "| task | source | origin | train | test | sha256 of train / test (first 12) |", "|---|---|---|---|---|---|"]
    for task in tasks:
        source = sources[task]
        hashes = source.get("sha256", {})
        lines.append(f"| {task} | {source['source']} | {_origin(source)} | {source['train']} | {source['test']} "
                     f"| {hashes.get('train.jsonl', '')[:12]} / {hashes.get('test.jsonl', '')[:12]} |")
    return "\n".join(lines) + "\n"


def _origin(source: dict) -> str:
    if source["source"] == "hub":
        return f"{source['dataset']} ({source.get('config') or 'default'}) at {source.get('commit') or source['revision']}"
    if source["source"] == "local":
        return source["folder"]
    if source["source"] == "finlora":
        files = [Path(name).name for name in (source.get("train_file"), source["test_file"]) if name]
        carved = f"; {source['carved']}" if source.get("carved") else ""
        return f"FinLoRA files {' + '.join(files)} in {source['folder']}{carved}"
    return f"{source['generator']}, seed {source['seed']}"


def _accuracy_f1(scores: dict) -> str:
    cell = f"{100 * scores['accuracy']:.2f}"
    return f"{cell} / {scores['f1_weighted']:.3f}" if "f1_weighted" in scores else cell


def _sizes_text(params: Params) -> str:
    text = f"up to {params.data.train_size} train / {params.data.test_size} test per task"
    overrides = ", ".join(f"{task} {s.train}/{s.test}" for task, s in params.data.sizes.items())
    return f"{text}; {overrides}" if overrides else text
