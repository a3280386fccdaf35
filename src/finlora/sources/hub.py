"""Public data from the Hugging Face Hub through `datasets.load_dataset`, pinned to a commit.

The requested revision is resolved to its commit first, and the data are read at that commit,
which source.json records. Data sets published with a loading script (FPB, FiNER-139) are read
from the Hub's parquet conversion of them, which `datasets` 4 and later can load.

ClassLabel ids become their names here, from the data set's own features (FiNER's per-token tags
included), so nothing downstream maps a label by position (TFNS, which stores bare ids, is named
in its task's row adapter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finlora.errors import FinloraError
from finlora.finer import iob_type
from finlora.sources import Source
from finlora.tasks import PARQUET_REVISION, Task

if TYPE_CHECKING:
    from finlora.config import DataParams

OFFLINE_HINT = ("check the network and HF_TOKEN; or use FinLoRA's released files (data.source: finlora), "
                "your own files (local) or the offline sample data (sample)")


def load(task: Task, seed: int) -> dict:
    """{"splits", "tag_names", "origin"} for `finlora.sources.RawData`."""
    hub = task.hub
    revision = PARQUET_REVISION if hub.parquet else hub.revision
    commit = resolve_commit(task, revision)
    try:
        import datasets

        where = {"data_dir": hub.config} if hub.parquet else {"name": hub.config}
        loaded = datasets.load_dataset(hub.path, **where, revision=commit)
    except Exception as error:  # network, auth, missing files: all mean "cannot get the data"
        raise FinloraError(
            f"task {task.name}: cannot load '{hub.path}' at {commit} from the Hugging Face Hub: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", hint=OFFLINE_HINT) from None
    origin = {"dataset": hub.path, "config": hub.config, "revision": revision, "commit": commit,
              "parquet_copy": hub.parquet}
    return {"splits": splits_from_hub(task, loaded, seed), "tag_names": tag_names(task, loaded), "origin": origin}


def resolve_commit(task: Task, revision: str) -> str:
    """The commit `revision` of the task's data set points at now."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(task.hub.path, revision=revision).sha
    except Exception as error:
        copy = " (its parquet conversion)" if revision == PARQUET_REVISION else ""
        raise FinloraError(f"task {task.name}: cannot reach '{task.hub.path}' revision {revision}{copy} on the "
                           f"Hugging Face Hub ({type(error).__name__})", hint=OFFLINE_HINT) from None


def splits_from_hub(task: Task, loaded, seed: int) -> dict[str, list[dict]]:
    """Our train/test splits from a `datasets.DatasetDict`, labels as names; a pooled data set is
    split as FinLoRA's evaluation code splits it."""
    hub = task.hub
    if hub.pool:
        import datasets

        pooled = datasets.concatenate_datasets([loaded[name] for name in hub.pool])
        loaded = pooled.train_test_split(test_size=hub.test_fraction, seed=seed)
        return {split: rows_with_label_names(task, loaded[split]) for split in ("train", "test")}
    return {ours: rows_with_label_names(task, loaded[theirs]) for ours, theirs in hub.splits.items()}


def tag_names(task: Task, loaded) -> list[str] | None:
    """FiNER's entity types in the order of its IOB ClassLabel names ("O", "B-X", "I-X", ...)."""
    if not task.lists_tag_names:
        return None
    names = _class_names(next(iter(loaded.values())).features[task.label_field])
    return list(dict.fromkeys(entity for entity in map(iob_type, names) if entity))


def rows_with_label_names(task: Task, dataset) -> list[dict]:
    """Rows as dicts, with every ClassLabel column's ids (or lists of ids) replaced by names."""
    class_labels = {name: _class_names(f) for name, f in dataset.features.items() if _class_names(f)}
    rows = dataset.to_list()
    for row in rows:
        for column, names in class_labels.items():
            value = row[column]
            row[column] = [names[v] for v in value] if isinstance(value, list) else names[value]
    return rows


def _class_names(feature) -> list[str] | None:
    """The names of a ClassLabel feature, or of a sequence of ClassLabel."""
    inner = getattr(feature, "feature", feature)
    return getattr(inner, "names", None)


class HubSource(Source):
    name = "hub"

    def load(self, task: Task, data: DataParams) -> dict:
        return load(task, data.seed)

    def provenance(self, origin: dict) -> str:
        copy = ", parquet copy" if origin.get("parquet_copy") else ""
        return f"{origin['dataset']} ({origin.get('config') or 'default'}{copy}) at {origin.get('commit') or origin['revision']}"
