"""Is a difference real? Two runs' answers to the same test examples, paired per example.

A run is `REV` (the adapter's predictions at a commit, an experiment or `workspace`), `base`
(the base model's; `base@REV` at another revision), `most_common` (always giving the training
split's most common answer, the bar the base model's evaluation scores; `most_common@REV`) or
`shots-K` (the base model shown K train examples before each prompt, few_shot.shots; `shots-K@REV`).
Per task: the difference in strict accuracy (B - A), a paired bootstrap 95 % interval of it, and
McNemar's exact test on the examples the two runs disagree on; for free text, whose examples
score between 0 and 1 (ROUGE-L), the mean score and Wilcoxon's signed-rank test instead. Predictions are read through DVC,
so an experiment's cached outputs serve. An adapter's predictions are those of one training seed
(by default the first seed both runs trained); the report gives the spread over seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from finlora import layout
from finlora.config import Params
from finlora.errors import FinloraError

BOOTSTRAP_SAMPLES = 10_000
ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    task: str
    n: int
    accuracy_a: float
    accuracy_b: float
    low: float  # bootstrap 95 % interval of accuracy_b - accuracy_a
    high: float
    only_a: int  # examples A gets right and B wrong
    only_b: int
    p_value: float  # McNemar, exact

    @property
    def difference(self) -> float:
        return self.accuracy_b - self.accuracy_a

    @property
    def verdict(self) -> str:
        if self.p_value >= ALPHA:
            return "cannot tell apart"
        return "B better" if self.difference > 0 else "A better"


def paired_bootstrap(a: list[bool], b: list[bool], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % interval of mean(b) - mean(a), resampling examples (pairs kept together)."""
    import numpy as np

    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(a_), size=(samples, len(a_)))
    differences = b_[picks].mean(axis=1) - a_[picks].mean(axis=1)
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def mcnemar(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    """(A right B wrong, A wrong B right, exact two-sided p): a binomial test on the disagreements."""
    from scipy.stats import binom

    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    disagreements = only_a + only_b
    if disagreements == 0:
        return 0, 0, 1.0
    return only_a, only_b, float(min(1.0, 2 * binom.cdf(min(only_a, only_b), disagreements, 0.5)))


def signed_rank(a: list[float], b: list[float]) -> tuple[int, int, float]:
    """(A scores higher, B scores higher, two-sided p of Wilcoxon's signed-rank test on the nonzero
    differences): McNemar's test for scores between 0 and 1."""
    from scipy.stats import wilcoxon

    differences = [y - x for x, y in zip(a, b) if y != x]
    if not differences:
        return 0, 0, 1.0
    return (sum(d < 0 for d in differences), sum(d > 0 for d in differences),
            float(wilcoxon(differences).pvalue))


def compare_runs(a: list, b: list, task: str) -> Comparison:
    """Per-example correctness (bools) or scores (floats, free text) of two runs, paired."""
    low, high = paired_bootstrap(a, b)
    scores = any(not isinstance(value, bool) for value in a + b)
    only_a, only_b, p = signed_rank(a, b) if scores else mcnemar(a, b)
    return Comparison(task, len(a), sum(a) / len(a), sum(b) / len(b), low, high, only_a, only_b, p)


UNTRAINED_RUNS = ("base", "most_common")  # read from the base model's predictions, any training seed


def shots_of(run: str) -> int | None:
    """K of a `shots-K` run, else None."""
    name = run.partition("@")[0]
    return int(name[len("shots-"):]) if name.startswith("shots-") and name[len("shots-"):].isdigit() else None


def untrained(run: str) -> bool:
    return run.partition("@")[0] in UNTRAINED_RUNS or shots_of(run) is not None


def run_model(run: str, seed: int) -> tuple[str, int]:
    """The layout's model and run number whose predictions `run` reads: ("few_shot", K) for
    shots-K, ("base", seed) for the base model and the bar, ("lora", seed) for an adapter."""
    shots = shots_of(run)
    if shots:
        return "few_shot", shots
    return ("base" if untrained(run) else "lora"), seed


def predictions(run: str, group: str, task: str, seed: int) -> list[dict]:
    """The prediction rows of `run` for one task, read through DVC (the bar's are the base model's)."""
    import dvc.api

    rev = run.partition("@")[2] if untrained(run) else run
    model, number = run_model(run, seed)
    path = str(layout.predictions(model, group, number) / f"{task}.jsonl")
    try:
        text = dvc.api.read(path, rev=None if rev in ("", "workspace") else rev)
    except Exception as error:  # an unknown revision, outputs never computed or not in the cache
        raise FinloraError(f"{run}: cannot read {path} ({type(error).__name__})",
                           hint="name a commit, an experiment (dvc exp show), workspace, base, most_common or "
                           "shots-K (K in few_shot.shots); run dvc repro or dvc pull first") from None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def answered_by_both(rows_a: list[dict], rows_b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows of each run whose test prompt the other run answered too, in each run's order."""
    prompts_a, prompts_b = {row["context"] for row in rows_a}, {row["context"] for row in rows_b}
    return [row for row in rows_a if row["context"] in prompts_b], [row for row in rows_b if row["context"] in prompts_a]


def correctness(rows: list[dict], field: str = "correct") -> list:
    """Per example (per entity for FiNER) strict correctness (free text: ROUGE-L), as evaluation
    wrote it: the model's (`correct`) or, in the base model's rows, the training split's most
    common answer's."""
    flat: list = []
    for row in rows:
        if field not in row:
            raise FinloraError(f"predictions without per-example `{field}` (written before this version)",
                               hint="rerun the evaluate stages (dvc repro) or compare runs evaluated since")
        flat += row[field] if isinstance(row[field], list) else [row[field]]
    return flat


def run_correctness(run: str, rows: list[dict]) -> list[bool]:
    return correctness(rows, "most_common_correct" if run.partition("@")[0] == "most_common" else "correct")


def run_params(run: str) -> dict | None:
    """A run's params.yaml as it was (None for the base model and the bar, which any run has)."""
    if untrained(run):
        return None
    import dvc.api
    import yaml

    try:
        return yaml.safe_load(dvc.api.read("params.yaml", rev=None if run == "workspace" else run))
    except Exception as error:
        raise FinloraError(f"{run}: cannot read its params.yaml ({type(error).__name__})",
                           hint="name a commit, an experiment (dvc exp show), workspace, base or most_common") from None


def seeds_of(params: dict) -> list[int]:
    train = params["train"]
    return list(train.get("seeds") or [train.get("seed")])  # commits before train.seeds had one train.seed


def common_seed(params_a: dict | None, params_b: dict | None, run_a: str, run_b: str) -> int:
    """The first seed, in A's order, that both runs trained (any seed where one is the base model)."""
    if params_a is None or params_b is None:
        return seeds_of(params_a or params_b)[0] if (params_a or params_b) else 0
    seeds_a, seeds_b = seeds_of(params_a), seeds_of(params_b)
    common = [seed for seed in seeds_a if seed in seeds_b]
    if not common:
        raise FinloraError(f"{run_a} trained seeds {seeds_a}, {run_b} seeds {seeds_b}: none in common",
                           hint="pass --seed to compare the adapters of one seed each run has")
    return common[0]


def compare(params: Params, run_a: str, run_b: str, seed: int | None = None) -> list[Comparison]:
    """One comparison per task both runs evaluated (params.yaml's groups where both are the base
    model), on the adapters trained with `seed` (by default the first both runs trained)."""
    params_a, params_b = run_params(run_a), run_params(run_b)
    seed = common_seed(params_a, params_b, run_a, run_b) if seed is None else seed
    groups = [run["tasks"] for run in (params_a, params_b) if run is not None] or [params.tasks]
    results = []
    for group, tasks in groups[0].items():
        for task in tasks:
            if any(task not in other.get(group, []) for other in groups[1:]):
                continue
            rows_a, rows_b = predictions(run_a, group, task, seed), predictions(run_b, group, task, seed)
            if shots_of(run_a) or shots_of(run_b):  # a k-shot prompt too long for the model has no answer
                rows_a, rows_b = answered_by_both(rows_a, rows_b)
                if not rows_a:
                    continue
            if [r["context"] for r in rows_a] != [r["context"] for r in rows_b]:
                raise FinloraError(f"task {task}: {run_a} and {run_b} were tested on different examples",
                                   hint="compare runs on the same data and eval.limit")
            results.append(compare_runs(run_correctness(run_a, rows_a), run_correctness(run_b, rows_b), task))
    if not results:
        raise FinloraError(f"{run_a} and {run_b} evaluated no task in common")
    return results


def table(results: list[Comparison], run_a: str, run_b: str) -> str:
    lines = [f"A = {run_a}, B = {run_b}; strict accuracy %, B - A with a paired bootstrap 95 % interval; "
             f"McNemar's exact test on the examples they disagree on (free text: mean ROUGE-L %, Wilcoxon's "
             f"signed-rank test, and the examples each scores higher on).", "",
             "| task | n | A | B | B - A | 95 % interval | A only / B only right | p | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in results:
        lines.append(f"| {c.task} | {c.n} | {100 * c.accuracy_a:.1f} | {100 * c.accuracy_b:.1f} "
                     f"| {100 * c.difference:+.1f} | {100 * c.low:+.1f} to {100 * c.high:+.1f} "
                     f"| {c.only_a} / {c.only_b} | {c.p_value:.3g} | {c.verdict} |")
    tied = [c.task for c in results if c.verdict == "cannot tell apart"]
    if tied:
        lines += ["", f"The test data cannot tell the two runs apart on: {', '.join(tied)} (p >= {ALPHA})."]
    return "\n".join(lines) + "\n"
