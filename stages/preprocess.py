"""DVC stage preprocess@<group>: raw rows -> {"context", "target"} records in the paper's format."""

from pathlib import Path
from typing import Optional

import typer

from finlora.config import load_params
from finlora.errors import FinloraError, exit_on_error
from finlora.files import atomic_dir, read_json, read_jsonl, write_json, write_jsonl
from finlora.prepare import fits_in, prepare
from finlora.tasks import get_task


def main(group: str = typer.Argument(help="task group from params.yaml `tasks`"),
         raw: Path = typer.Argument(help="raw data folder written by download"),
         out: Path = typer.Argument(help="folder to write <task>/{train,test}.jsonl into"),
         base: Optional[Path] = typer.Option(None, help="base model folder; its tokenizer sizes FiNER prompts")) -> None:
    """Build the prompts of every task of GROUP; stats.json counts skipped and dropped rows."""
    params = load_params().for_group(group)  # FiNER prompts fit the group's train.max_seq_len
    with atomic_dir(out) as tmp:
        for name in params.group_tasks(group):
            task = get_task(name)
            tag_names, fits = None, None
            if task.lists_tag_names:
                tag_names = read_json(raw / name / "tags.json")
                write_json(tmp / name / "tags.json", tag_names)
                if base is None:
                    raise FinloraError("preprocess of FiNER needs --base: prompts are sized in its tokens")
                from finlora.models import load_tokenizer  # imports torch: only FiNER needs it

                tokenizer = load_tokenizer(base, params.model.chat_template)
                fits = fits_in(tokenizer, params.train.max_seq_len, params.model.chat_template)
            stats = {}
            for split in ("train", "test"):
                path = raw / name / f"{split}.jsonl"
                prepared = prepare(task, read_jsonl(path), path, params, tag_names, raw / name / "filings", fits)
                write_jsonl(tmp / name / f"{split}.jsonl", prepared.records)
                stats[split] = prepared.stats()
            write_json(tmp / name / "stats.json", stats)
            print(f"{name}: " + "; ".join(f"{split} {s['records']} prompts, {s['skipped_bad_records']} bad rows "
                                          f"skipped, {s['dropped_over_budget']} over budget"
                                          for split, s in stats.items()))


if __name__ == "__main__":
    exit_on_error(lambda: typer.run(main))
