"""Where the pipeline's outputs live: every path dvc.yaml declares, spelt once. Stages are given
these paths on their command lines (dvc.yaml); the CLI, the report and `finlora compare` ask
here; tests/test_layout.py checks dvc.yaml's outs against this module.

A run is a model and, for an adapter, its group and training seed: the base model's outputs are
its group's (`<group>`), an adapter's its group's and seed's (`<group>/seed-<seed>`), the base
model's few-shot evaluations its group's and number of shots (model `few_shot`, `<group>/k-<k>`:
the number of shots takes the seed's place).
"""

from __future__ import annotations

from pathlib import Path

BASE = Path("models/base")
ADAPTERS = Path("models/adapters")
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
PREDICTIONS = Path("data/predictions")
METRICS = Path("metrics")
REPORT = METRICS / "report.md"
SUMMARY = METRICS / "summary.json"
TASK_METRICS = METRICS / "tasks"  # one small file per task: what `dvc metrics show` lists, a row each
PLOTS = METRICS / "plots"


def run_folder(model: str, group: str, seed: int) -> str:
    """A run's folder under models/adapters/, data/predictions/<model>/ and metrics/*/<model>/."""
    if model == "few_shot":
        return f"{group}/k-{seed}"
    return group if model == "base" else f"{group}/seed-{seed}"


def adapter(group: str, seed: int) -> Path:
    return ADAPTERS / run_folder("lora", group, seed)


def predictions(model: str, group: str, seed: int, root: Path = PREDICTIONS) -> Path:
    return root / model / run_folder(model, group, seed)


def eval_metrics(model: str, group: str, seed: int, root: Path = METRICS) -> Path:
    return root / "eval" / model / run_folder(model, group, seed)


def forgetting(benchmark: str, group: str | None = None, seed: int = 0, root: Path = METRICS) -> Path:
    """An lm-eval task's scores: the base model's (no group), or a group's adapter of one seed."""
    folder = root / "eval" / "forgetting"
    return (folder / "base" if group is None else folder / "lora" / run_folder("lora", group, seed)) / f"{benchmark}.json"


def confusion(model: str, group: str, seed: int, root: Path = METRICS) -> Path:
    return root / "confusion" / model / run_folder(model, group, seed)


def train_metrics(group: str, seed: int, root: Path = METRICS) -> Path:
    return root / "train" / f"{run_folder('lora', group, seed)}.json"


def train_live(group: str, seed: int, root: Path = METRICS) -> Path:
    """The dvclive folder of a training: its curves under plots/metrics/."""
    return root / "train" / run_folder("lora", group, seed)
