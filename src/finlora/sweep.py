"""Compare experiments: accuracy against LoRA rank and bits, from `dvc exp show --json`."""

from __future__ import annotations

import json
import subprocess

from finlora.errors import FinloraError


def experiments(all_commits: bool = False) -> list[dict]:
    """Every experiment (and its baseline commit) with its params and summary metrics: those of
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
    [{"name", "params" (params.yaml), "summary" (metrics/summary.json)}]."""
    found: list[dict] = []
    _walk(shown, found)
    return found


def _walk(node, found: list[dict]) -> None:
    if isinstance(node, dict):
        executor = node.get("executor")
        if isinstance(executor, dict) and executor.get("state") not in (None, "success"):
            return  # queued, running or failed: no results of its own yet
        data = node.get("data")
        if isinstance(data, dict) and data.get("params") and data.get("metrics"):
            summary = data["metrics"].get("metrics/summary.json", {}).get("data")
            if summary:
                rev = data.get("rev", "")
                found.append({"name": node.get("name") or (rev if rev == "workspace" else rev[:7]),
                              "params": data["params"]["params.yaml"]["data"], "summary": summary})
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


def rows(found: list[dict]) -> list[dict]:
    """One row per experiment and task: rank, bits, accuracy, F1 (None for tasks without one, such
    as XBRL values); duplicates (same name) once."""
    table, seen = [], set()
    for exp in found:
        if exp["name"] in seen:
            continue
        seen.add(exp["name"])
        for task, scores in exp["summary"].items():
            if task == "train":
                continue
            table.append({"experiment": exp["name"], "lora_rank": exp["params"]["lora"]["rank"],
                          "quant_bits": exp["params"]["quant"]["bits"], "task": task,
                          "accuracy": scores["lora"]["accuracy"], "f1_weighted": scores["lora"].get("f1_weighted")})
    return table


def markdown(table: list[dict]) -> str:
    tasks = sorted({row["task"] for row in table}, key=[row["task"] for row in table].index)
    by_experiment: dict[str, dict] = {}
    for row in table:
        entry = by_experiment.setdefault(row["experiment"], {"rank": row["lora_rank"], "bits": row["quant_bits"]})
        entry[row["task"]] = row["accuracy"]
    lines = ["| experiment | rank | bits | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 4) + "|"]
    for name, entry in sorted(by_experiment.items(), key=lambda item: (item[1]["bits"], item[1]["rank"])):
        scores = [entry[t] for t in tasks if t in entry]
        cells = " | ".join(f"{100 * entry[t]:.2f}" if t in entry else "" for t in tasks)
        lines.append(f"| {name} | {entry['rank']} | {entry['bits']} | {cells} | {100 * sum(scores) / len(scores):.2f} |")
    return "\n".join(lines) + "\n"
