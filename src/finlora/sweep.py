"""Compare experiments: per task scores against whatever params the experiments vary, from
`dvc exp show --json`; and the data of the LoRA vs QLoRA study's plots (accuracy and trainable
parameters against the rank, per quantisation and target set)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from finlora.errors import FinloraError
from finlora.files import write_text
from finlora.layout import TASK_METRICS


def experiments(all_commits: bool = False) -> list[dict]:
    """Every experiment (and its baseline commit) with its params and per-task metrics: those of
    HEAD, or with `all_commits` those of every commit."""
    command = ["dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    try:
        shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        said = [line.strip() for line in str(getattr(error, "stderr", None) or error).splitlines() if line.strip()]
        raise FinloraError(f"`dvc exp show --json` failed: {said[-1] if said else error}",
                           hint="run finlora sweep inside this project's git + DVC repository") from None
    return collect(json.loads(shown))


def collect(shown) -> list[dict]:
    """Finished experiments and baselines in parsed `dvc exp show --json` output:
    [{"name", "params" (params.yaml), "tasks" ({task: metrics/tasks/<task>.json})}], each name once."""
    found: list[dict] = []
    _walk(shown, found)
    unique = {}
    for exp in found:
        unique.setdefault(exp["name"], exp)
    return list(unique.values())


def _walk(node, found: list[dict]) -> None:
    if isinstance(node, dict):
        executor = node.get("executor")
        if isinstance(executor, dict) and executor.get("state") not in (None, "success"):
            return  # queued, running or failed: no results of its own yet
        data = node.get("data")
        if isinstance(data, dict) and data.get("params") and data.get("metrics"):
            tasks = {Path(path).stem: metrics["data"] for path, metrics in data["metrics"].items()
                     if Path(path).parent == TASK_METRICS and metrics.get("data")}
            if tasks:
                rev = data.get("rev", "")
                found.append({"name": node.get("name") or (rev if rev == "workspace" else rev[:7]),
                              "params": data["params"]["params.yaml"]["data"], "tasks": tasks})
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


def flatten(params: dict, prefix: str = "") -> dict[str, object]:
    """{"lora.rank": 8, "lora.target_modules": '["q_proj", "v_proj"]', ...}: lists as JSON text."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "tasks":
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return flat


def varied(found: list[dict]) -> list[str]:
    """The params keys whose values differ between the experiments, in params.yaml order."""
    flats = [flatten(exp["params"]) for exp in found]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [key for key in keys if len({json.dumps(flat.get(key)) for flat in flats}) > 1]


STUDY_KEYS = ("lora.rank", "lora.target_modules", "quant.bits")  # the axes of the study's plots, always kept


def rows(found: list[dict]) -> list[dict]:
    """One row per experiment and task: the varied params, the scores (accuracy: free text's
    ROUGE-L; f1_weighted None for tasks without one, such as XBRL values; with several training seeds their mean, and
    accuracy_sd their standard deviation) and the task's adapter's trainable parameters."""
    keys = list(dict.fromkeys([*varied(found), *STUDY_KEYS]))
    table = []
    for exp in found:
        flat = flatten(exp["params"])
        for task, columns in exp["tasks"].items():
            table.append({"experiment": exp["name"], **{key: flat.get(key) for key in keys}, "task": task,
                          "accuracy": columns["lora"], "accuracy_sd": columns.get("sd"),
                          "strict_accuracy": columns.get("strict"), "f1_weighted": columns.get("f1"),
                          "trainable_params": columns.get("trainable")})
    return table


def markdown(table: list[dict], keys: list[str]) -> str:
    """Experiments as rows: the varied params, each task's accuracy (± its standard deviation over
    training seeds, where there are several), and their mean."""
    tasks = list(dict.fromkeys(row["task"] for row in table))
    by_experiment: dict[str, dict] = {}
    spreads: dict[tuple[str, str], float] = {}
    for row in table:
        entry = by_experiment.setdefault(row["experiment"], {key: row[key] for key in keys})
        entry[row["task"]] = row["accuracy"]
        if row.get("accuracy_sd") is not None:
            spreads[row["experiment"], row["task"]] = row["accuracy_sd"]
    lines = ["| experiment | " + " | ".join(keys + tasks) + " | mean |", "|---" * (len(keys) + len(tasks) + 2) + "|"]
    for name, entry in sorted(by_experiment.items(), key=lambda item: [str(item[1][k]) for k in keys]):
        scores = [entry[t] for t in tasks if t in entry]
        cells = [str(entry[k]) for k in keys] + [_accuracy_cell(entry.get(t), spreads.get((name, t))) for t in tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * sum(scores) / len(scores):.2f} |")
    return "\n".join(lines) + "\n"


def _accuracy_cell(accuracy: float | None, sd: float | None) -> str:
    if accuracy is None:
        return ""
    return f"{100 * accuracy:.2f}" + (f" ± {100 * sd:.2f}" if sd is not None else "")


def write_plot_data(table: list[dict], out: Path) -> list[Path]:
    """The study's plots as CSV files for `dvc plots show`: accuracy against the rank, one file per
    (quant.bits, lora.target_modules), and trainable parameters against the rank."""
    import pandas as pd

    if len({row["lora.rank"] for row in table}) < 2:
        return []
    frame = pd.DataFrame(table)
    written = []
    for (bits, targets), part in frame.groupby(["quant.bits", "lora.target_modules"], sort=True):
        name = f"accuracy-{bits}bit-{_slug(targets)}.csv"
        written.append(_write_csv(part[["lora.rank", "task", "accuracy"]].sort_values(["task", "lora.rank"]), out / name))
    params = frame.dropna(subset=["trainable_params"]).drop_duplicates(["lora.rank", "lora.target_modules"])
    written.append(_write_csv(params[["lora.rank", "lora.target_modules", "trainable_params"]].sort_values("lora.rank"),
                              out / "trainable-params.csv"))
    return written


def _slug(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-") or "default"


def _write_csv(frame, path: Path) -> Path:
    write_text(path, frame.to_csv(index=False))
    return path
