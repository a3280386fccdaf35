"""DVC stage train@<group>: one LoRA adapter for a task group, under the DeepSpeed launcher.

    deepspeed --num_gpus N stages/train.py GROUP ...
"""

from pathlib import Path

import typer

from finlora import preflight, training
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import read_jsonl
from finlora.mixing import training_examples


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         seed: int = typer.Option(..., help="training seed, one of params.yaml train.seeds"),
         data: Path = typer.Option(..., help="prepared data folder of the group"),
         base: Path = typer.Option(..., help="base model folder"),
         adapter: Path = typer.Option(..., help="adapter folder to write"),
         metrics: Path = typer.Option(..., help="training metrics JSON to write"),
         live: Path = typer.Option(..., help="dvclive folder for per-step loss and learning rate"),
         local_rank: int = typer.Option(-1, "--local_rank", "--local-rank", help="set by the DeepSpeed launcher")) -> None:
    """Train GROUP's adapter with SEED on the train split of all its tasks (less the validation share
    train.validation_fraction holds out)."""
    params = load_params().for_group(group).for_seed(seed)
    preflight.check_environment(params, base)
    by_task = {task: read_jsonl(data / task / "train.jsonl") for task in params.group_tasks(group)}
    records, validation = training_examples(by_task, params.train)
    checkpoints = Path(".cache/finlora/train") / "-".join(adapter.parts)  # kept across interrupted runs
    result = training.train(params, records, base, adapter, metrics, live, checkpoints, validation)
    if result is not None:
        validated = (f", validation accuracy {result['val_accuracy']} at step {result['kept_step']}"
                     if result["val_accuracy"] is not None else "")
        print(f"{group}, seed {seed}: loss {result['final_loss']}{validated}, {result['tokens_per_s']} tokens/s, "
              f"{result['wall_s']} s")


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
