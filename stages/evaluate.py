"""DVC stages evaluate_base@<group>, evaluate@<group>-<seed> and evaluate_few_shot@<group>-<k>:
generate answers on the test splits and score them, for the base model, the base model plus the
group's adapter, or the base model shown k train examples before each prompt."""

from pathlib import Path
from typing import Optional

import typer

from finlora.config import load_params
from finlora.errors import FinloraError, exit_on_error
from finlora.evaluation import evaluate
from finlora.files import atomic_dir


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         data: Path = typer.Option(..., help="prepared data folder of the group"),
         base: Path = typer.Option(..., help="base model folder"),
         adapter: Optional[Path] = typer.Option(None, help="adapter folder; omit to evaluate the base model"),
         predictions: Path = typer.Option(..., help="folder to write <task>.jsonl predictions into"),
         metrics: Path = typer.Option(..., help="folder to write <task>.json metrics into"),
         confusion: Path = typer.Option(..., help="folder to write <task>.json confusion-matrix rows into"),
         shots: int = typer.Option(0, help="train examples before each test prompt (the base model only; "
                                         "few_shot.seed picks them)")) -> None:
    """Evaluate one model on every task of GROUP."""
    params = load_params()
    if shots and adapter is not None:
        raise FinloraError("--shots with --adapter: few-shot prompts are the base model's baseline",
                           hint="leave out --adapter")
    progress_key = "-".join(predictions.parts)  # one progress file per stage and task
    with atomic_dir(predictions) as predictions_tmp, atomic_dir(metrics) as metrics_tmp, \
            atomic_dir(confusion) as confusion_tmp:
        evaluate(params, params.group_tasks(group), base, adapter, data, predictions_tmp, metrics_tmp,
                 confusion_tmp, progress_key, shots)


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
