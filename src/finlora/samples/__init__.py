"""The offline sample data (`data.source: sample`, the tests' data): deterministic, seeded
generators written for this project, no public data copied.

- classification: news and tweet sentiment (NWGI's seven levels), headline questions, entity typing
- finer: filing sentences with FiNER-139 tags, as a `datasets.DatasetDict` in FiNER-139's features
- xbrl: XBRL instance documents of fictitious companies, and tag, value and formula questions
- later: FinLoRA's later tasks in its record forms (math, XBRL terms, FinanceBench, FNXL)
"""

from __future__ import annotations

from finlora.samples import classification, finer, later, xbrl
from finlora.sources import hub
from finlora.tasks import TASKS


def generate(task: str, n_train: int, n_test: int, seed: int) -> dict:
    """`n_train` + `n_test` distinct rows for `task` ({"splits": ...} and, for FiNER and XBRL, the
    tag names or filings), deterministic in (task, sizes, seed); no test text appears in train."""
    if task == "finer":
        loaded = finer.dataset(n_train, n_test, seed)
        return {"splits": hub.splits_from_hub(TASKS[task], loaded, seed), "tag_names": hub.tag_names(TASKS[task], loaded)}
    if task in ("xbrl_tags", "xbrl_value", "xbrl_formula"):
        return xbrl.generate(task, n_train, n_test, seed)
    if task in later.TASKS:
        return later.generate(task, n_train, n_test, seed)
    return {"splits": classification.labelled_rows(task, n_train, n_test, seed)}
