"""train.sampling: how a multi-task group draws its training examples from its tasks."""

from collections import Counter

import pytest

from finlora.mixing import hold_out, mix, shares

SIZES = {"fpb": 300, "fiqa": 30, "tfns": 270}


def test_proportional_keeps_every_example_once():
    by_task = {task: [{"task": task, "i": i} for i in range(n)] for task, n in SIZES.items()}
    mixed = mix(by_task, "proportional", 2.0, seed=1)
    assert sorted(map(repr, mixed)) == sorted(repr(r) for records in by_task.values() for r in records)


def test_balanced_gives_every_task_the_same_share_of_the_same_total():
    assert shares(SIZES, "balanced", 2.0) == {"fpb": 200, "fiqa": 200, "tfns": 200}


def test_temperature_shares_follow_size_to_the_power_one_over_t():
    counts = shares(SIZES, "temperature", 2.0)
    roots = {task: n ** 0.5 for task, n in SIZES.items()}
    expected = {task: 600 * root / sum(roots.values()) for task, root in roots.items()}
    assert sum(counts.values()) == 600
    assert all(abs(counts[task] - expected[task]) < 1 for task in SIZES)  # 257.3 / 81.4 / 261.4
    assert shares(SIZES, "temperature", 1.0) == SIZES


def test_a_small_task_repeats_its_examples_evenly_and_a_large_one_is_subsampled():
    by_task = {task: [{"task": task, "i": i} for i in range(n)] for task, n in SIZES.items()}
    mixed = mix(by_task, "balanced", 2.0, seed=3)
    seen = Counter((r["task"], r["i"]) for r in mixed)
    fiqa = [seen[("fiqa", i)] for i in range(30)]
    assert sum(fiqa) == 200 and max(fiqa) - min(fiqa) <= 1  # 6 or 7 times each
    assert len({i for task, i in seen if task == "fpb"}) == 200  # 200 of 300, none twice
    assert mix(by_task, "balanced", 2.0, seed=3) == mixed and mix(by_task, "balanced", 2.0, seed=4) != mixed


@pytest.mark.parametrize("policy", ["proportional", "balanced", "temperature"])
def test_one_task_is_the_same_under_every_policy(policy):
    assert shares({"ner": 17}, policy, 3.0) == {"ner": 17}


def test_hold_out_sets_aside_a_seeded_share_of_each_task_that_training_never_sees():
    by_task = {task: [{"task": task, "i": i} for i in range(n)] for task, n in {"fpb": 48, "fiqa": 29, "one": 1}.items()}
    training, validation = hold_out(by_task, 0.05, seed=7)
    held = Counter(r["task"] for r in validation)
    assert held == {"fpb": 2, "fiqa": 1}  # 5 % of 48 rounds to 2; a small task still gives one; a lone example trains
    for task, records in by_task.items():
        kept = training[task] + [r for r in validation if r["task"] == task]
        assert sorted(r["i"] for r in kept) == list(range(len(records)))  # disjoint, and nothing lost
    assert hold_out(by_task, 0.05, seed=7) == (training, validation)
    assert hold_out(by_task, 0.05, seed=8)[1] != validation
    assert hold_out(by_task, 0.0, seed=7) == (by_task, [])
