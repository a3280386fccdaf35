"""DVC stage base_model: models/base/ from model.base (builtin GGUF, Hub id or local folder)."""

from pathlib import Path

import typer

from finlora import models
from finlora.config import load_params
from finlora.errors import exit_on_error
from finlora.files import atomic_dir


def main(out: Path = typer.Argument(help="folder to write the base model into")) -> None:
    """Materialise the base model as a safetensors folder (or a pinned Hub pointer)."""
    params = load_params()
    with atomic_dir(out) as tmp:
        info = models.materialize_base(params.model.base, tmp, params.model.trust_remote_code)
    print(f"base model {info['base']} ({info['kind']}) -> {out}")


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
