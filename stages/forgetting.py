"""DVC stages forgetting_base@<task> and forgetting@<group>-<seed>-<task>: one lm-evaluation-harness
task's scores for the base model, or for the base model plus the group's adapter."""

from pathlib import Path
from typing import Optional

import typer

from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import write_json
from finlora.forgetting import score


def main(task: str = typer.Argument(help="an lm-eval task, one of forgetting.tasks"),
         base: Path = typer.Option(..., help="base model folder"),
         adapter: Optional[Path] = typer.Option(None, help="adapter folder; omit to score the base model"),
         out: Path = typer.Option(..., help="JSON file to write the task's metrics into")) -> None:
    """Score one model on one lm-eval task."""
    params = load_params()
    write_json(out, score(base, adapter, task, params.forgetting.limit, params.eval.batch_size))


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
