"""Forgetting: the base model and each adapter scored on general benchmarks through EleutherAI's
lm-evaluation-harness (`lm-eval`), our model handed to its `HFLM` wrapper with the adapter
attached (stages forgetting_base@<benchmark> and forgetting@<group>-<seed>-<benchmark>, params
`forgetting`). The report sets each benchmark's adapter score beside the base model's.

Tasks are lm-eval's names (mmlu, hellaswag, gsm8k, ...: their data sets come from the Hub) or a
task in lm-eval's own YAML format under lm_eval_tasks/ (finance_basics ships there, with its
records, so the stage runs offline).
"""

from __future__ import annotations

import functools
from pathlib import Path

from finlora import models
from finlora.errors import FinloraError

TASKS_DIR = Path("lm_eval_tasks")  # lm-eval task YAMLs of our own, beside lm-eval's


@functools.lru_cache(maxsize=None)
def task_manager(include: Path = TASKS_DIR):
    """lm-eval's index of its tasks and ours (it reads every task YAML it has: built once a process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include) if include.is_dir() else None)


def check_tasks(names: list[str], include: Path = TASKS_DIR) -> None:
    """Every name a task lm-eval knows (its own or one under `include`), before a model loads."""
    known = set(task_manager(include).all_tasks)
    for name in names:
        if name not in known:
            raise FinloraError(f"forgetting.tasks: lm-eval knows no task {name!r}",
                               hint=f"a name from `lm-eval ls tasks`, or a task YAML under {include}/ "
                               "(finance_basics ships there)")


def score(base_dir: Path, adapter_dir: Path | None, task: str, limit: int, batch_size: int,
          include: Path = TASKS_DIR) -> dict:
    """lm-eval's metrics of one task for the base model (adapter_dir None) or the adapter:
    {metric: value, metric_stderr: value, ..., "n": examples scored, "lm_eval_version"}. The
    task's data set is read before the model loads, so a missing one stops the stage first."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import get_task_dict

    check_tasks([task], include)
    if models.head_labels(adapter_dir):
        raise FinloraError(f"{adapter_dir}: an adapter with a classification head has no language model to score",
                           hint="forgetting scores adapters that generate (model.head: generate)")
    try:
        get_task_dict([task], task_manager(include))
    except (ConnectionError, OSError) as error:
        raise FinloraError(f"forgetting: lm-eval task {task} could not read its data set ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:160]}); lm-eval's own tasks read theirs from the Hub, "
                           "which needs the network", hint="run online, or name a task under lm_eval_tasks/") from None
    wrapped = HFLM(pretrained=models.load_model(base_dir, adapter_dir), tokenizer=models.load_tokenizer(base_dir),
                   batch_size=batch_size)
    results = lm_eval.simple_evaluate(model=wrapped, tasks=[task], limit=limit or None,
                                      task_manager=task_manager(include), bootstrap_iters=1000)
    found = results["results"][task]
    metrics = {name.split(",")[0]: round(value, 6) for name, value in found.items()
               if "," in name and isinstance(value, (int, float))}
    return {**metrics, "n": results["n-samples"][task]["effective"], "lm_eval_version": lm_eval.__version__}
