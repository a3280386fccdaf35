"""`finlora compare`: the paired bootstrap interval and McNemar's test, checked against values
worked out by hand and against scipy's binomial test."""

import math
import os

import pytest
from scipy.stats import binomtest

from finlora.compare import (common_seed, compare_runs, correctness, mcnemar, paired_bootstrap, run_correctness,
                             untrained)
from finlora.errors import FinloraError


def test_mcnemar_on_a_small_case_by_hand():
    # 1 example only A gets right, 5 only B: p = 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * 7/64
    a = [True, False, False, False, False, False, True, True]
    b = [False, True, True, True, True, True, True, False]
    only_a, only_b, p = mcnemar(a, b)
    assert (only_a, only_b) == (2, 5)  # 2 * P(X <= 2), X ~ Bin(7, 1/2) = 2 * 29/128
    assert p == pytest.approx(2 * 29 / 128)
    assert p == pytest.approx(binomtest(2, 7, 0.5).pvalue)
    assert mcnemar([True, False], [True, False]) == (0, 0, 1.0)


def test_bootstrap_interval_is_zero_for_identical_runs_and_matches_the_normal_width():
    same = [i % 3 == 0 for i in range(60)]
    assert paired_bootstrap(same, same) == (0.0, 0.0)
    # 400 examples, B right on 40 more of them than A, never less: the differences are 0 or 1 with p = 0.1
    a = [False] * 400
    b = [i < 40 for i in range(400)]
    low, high = paired_bootstrap(a, b)
    half_width = 1.96 * math.sqrt(0.1 * 0.9 / 400)  # 0.0294
    assert low == pytest.approx(0.1 - half_width, abs=0.006) and high == pytest.approx(0.1 + half_width, abs=0.006)


def test_the_verdict_says_when_the_data_cannot_tell_runs_apart():
    a = [True] * 30 + [False] * 18
    b = [False] * 3 + [True] * 27 + [True] * 4 + [False] * 14  # 3 answers worse, 4 better of 48: 2 points, noise
    close = compare_runs(a, b, "fpb")
    assert close.verdict == "cannot tell apart" and close.low < 0 < close.high
    far = compare_runs([False] * 40 + [True] * 8, [True] * 40 + [False] * 8, "ner")
    assert far.verdict == "B better" and far.low > 0 and far.p_value < 1e-5


def test_finer_correctness_counts_each_entity():
    rows = [{"correct": [True, False, True]}, {"correct": [False]}, ]
    assert correctness(rows) == [True, False, True, False]
    with pytest.raises(FinloraError, match="rerun the evaluate stages"):
        correctness([{"answer": "x"}])


def test_the_most_common_answer_is_read_from_the_base_model_rows():
    rows = [{"correct": False, "most_common_correct": True}, {"correct": True, "most_common_correct": False}]
    assert run_correctness("most_common", rows) == run_correctness("most_common@HEAD~1", rows) == [True, False]
    assert run_correctness("base", rows) == run_correctness("workspace", rows) == [False, True]
    assert [untrained(run) for run in ("base", "base@v1", "most_common@v1", "workspace", "exp-base")] == \
        [True, True, True, False, False]
    with pytest.raises(FinloraError, match="without per-example `most_common_correct`"):
        run_correctness("most_common", [{"correct": True}])


def test_the_default_seed_is_the_first_both_runs_trained():
    def run(*seeds):
        return {"train": {"seeds": list(seeds)}}

    assert common_seed(run(3, 1, 2), run(2, 1), "a", "b") == 1  # A's order
    assert common_seed(None, run(7, 8), "base", "b") == 7  # the base model has every seed's predictions
    assert common_seed({"train": {"seed": 42}}, run(42), "old", "b") == 42  # a commit from before train.seeds
    with pytest.raises(FinloraError, match=r"a trained seeds \[1\], b seeds \[2\]: none in common"):
        common_seed(run(1), run(2), "a", "b")


def test_runs_that_evaluated_no_task_in_common_are_named(tmp_path, monkeypatch):
    """Two commits whose params.yaml name different tasks: nothing to pair, said before any
    prediction is read."""
    import subprocess

    import yaml

    from conftest import params_with
    from finlora.compare import compare

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})

    git("init", "-q")
    for tag, tasks in (("sentiment-run", {"sentiment": ["fpb"]}), ("ner-run", {"ner": ["ner"]})):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tasks": tasks, "train": {"seeds": [42]}}))
        git("add", "params.yaml")
        git("commit", "-qm", tag)
        git("tag", tag)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FinloraError, match="sentiment-run and ner-run evaluated no task in common"):
        compare(params_with({}), "sentiment-run", "ner-run")
