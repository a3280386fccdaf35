"""Public data from the Hugging Face Hub through `datasets.load_dataset`, at a pinned revision.

ClassLabel ids become their names here, from the data set's own features (FiNER's per-token tags
included), so nothing downstream maps a label by position (TFNS, which stores bare ids, is named
in its task's row adapter).
"""

from __future__ import annotations

import random

from finlora.errors import FinloraError
from finlora.tasks import TAG_LIST, Task, iob_type


def load(task: Task, seed: int) -> dict:
    """{"splits": ..., "tag_names": ...} for `finlora.sources.RawData`."""
    hub = task.hub
    try:
        import datasets

        loaded = datasets.load_dataset(hub.path, hub.config, revision=hub.revision)
    except Exception as error:  # network, auth, missing repo: all mean "cannot get the data"
        raise FinloraError(
            f"task {task.name}: cannot load '{hub.path}' (revision {hub.revision}) from the "
            f"Hugging Face Hub: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            hint="check the network and HF_TOKEN, or set data.source: sample (offline) or local",
        ) from None
    return {"splits": splits_from_hub(task, loaded, seed), "tag_names": tag_names(task, loaded)}


def resolved_commit(task: Task) -> str | None:
    """The commit that `task.hub.revision` pointed at when the data were loaded (provenance)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(task.hub.path, revision=task.hub.revision).sha
    except Exception:
        return None


def splits_from_hub(task: Task, loaded, seed: int) -> dict[str, list[dict]]:
    """Our train/test splits from a `datasets.DatasetDict`, labels as names."""
    splits = {ours: rows_with_label_names(task, loaded[theirs]) for ours, theirs in task.hub.splits.items()}
    if "test" not in splits:  # FPB ships one split: carve a seeded test fraction from it
        rows = splits["train"]
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        n_test = int(len(rows) * task.hub.test_fraction)
        splits = {"train": [rows[i] for i in sorted(order[n_test:])],
                  "test": [rows[i] for i in sorted(order[:n_test])]}
    return splits


def tag_names(task: Task, loaded) -> list[str] | None:
    """FiNER's entity types in the order of its IOB ClassLabel names ("O", "B-X", "I-X", ...)."""
    if task.answer != TAG_LIST:
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
