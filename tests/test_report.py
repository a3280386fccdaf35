"""Seeds in the report: each task's adapter scores are the mean over train.seeds, with the sample
standard deviation and the Student's t 95 % interval of the mean (checked against scipy's own
interval), read from the per-seed metrics files the evaluate stages write."""

import json
import statistics

import pytest
from scipy import stats

from conftest import params_with
from finlora.report import collect, headlines, mean_of, render, significance, spread, summarize, task_metrics


def test_seeds_give_the_mean_sd_and_t_interval():
    values = [0.70, 0.74, 0.69]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values))
    result = spread(values)
    assert result["n"] == 3 and result["mean"] == round(statistics.mean(values), 4)
    assert result["sd"] == round(statistics.stdev(values), 4) == 0.0265
    assert result["ci95_low"] == pytest.approx(low, abs=1e-4) and result["ci95_high"] == pytest.approx(high, abs=1e-4)
    assert spread([0.5]) == {"n": 1, "mean": 0.5}  # one seed: no spread to speak of


def test_mean_of_averages_what_the_seeds_disagree_on_and_keeps_the_rest():
    runs = [{"accuracy": 0.5, "n": 4, "peak_memory_kind": "cpu_rss_sum", "lora_rank": 4},
            {"accuracy": 0.75, "n": 4, "peak_memory_kind": "cpu_rss_sum", "lora_rank": 4}]
    assert mean_of(runs) == {"accuracy": 0.625, "n": 4, "peak_memory_kind": "cpu_rss_sum", "lora_rank": 4}


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def test_collect_reads_every_seed_and_the_report_shows_them(tmp_path):
    params = params_with({"tasks": {"sentiment": ["fpb"]}, "train": {"seeds": [1, 2], "keep_best": True,
                                                                        "validation_fraction": 0.05}})
    scores = {"accuracy": 0.5, "strict_accuracy": 0.5, "invalid_rate": 0.0, "f1_weighted": 0.5, "seconds_per_example": 0.1}
    most_common = {"answer": "neutral", "accuracy": 0.625, "strict_accuracy": 0.625, "invalid_rate": 0.0,
                   "f1_weighted": 0.481}
    write(tmp_path / "eval" / "base" / "sentiment" / "fpb.json", {**scores, "most_common_answer": most_common})
    for seed, accuracy in ((1, 0.75), (2, 0.875)):
        write(tmp_path / "eval" / "lora" / "sentiment" / f"seed-{seed}" / "fpb.json",
              {**scores, "accuracy": accuracy, "strict_accuracy": accuracy - 0.125})
        write(tmp_path / "train" / "sentiment" / f"seed-{seed}.json",
              {"final_loss": 0.1 * seed, "wall_s": 10, "tokens_per_s": 100, "peak_memory_gb": 1.0, "adapter_bytes": 9,
               "trainable_params": 3, "lora_rank": 4, "quant_bits": 16, "batch_size_per_device": 8, "world_size": 1,
               "peak_memory_kind": "cpu_rss_sum", "device_hours": 0.01, "seed": seed, "steps": 20,
               "val_examples": 4, "kept_step": 10 * seed, "val_loss": 0.5, "val_accuracy": 0.25 * seed})
    results = collect(params, tmp_path)
    assert results["fpb"]["lora"]["accuracy"] == 0.8125 and results["fpb"]["gain"]["accuracy"] == 0.3125
    assert results["train"]["sentiment"]["final_loss"] == 0.15
    summary = summarize(results)
    assert summary["fpb"]["seeds"]["accuracy"]["sd"] == round(statistics.stdev([0.75, 0.875]), 4)
    assert summary["fpb"]["seeds"]["strict_accuracy"]["mean"] == 0.6875
    assert summary["fpb"]["most_common"] == {"accuracy": 0.625, "strict_accuracy": 0.625, "invalid_rate": 0.0,
                                             "f1_weighted": 0.481}
    sources = {"fpb": {"source": "sample", "generator": "sample", "seed": 42, "train": 1, "test": 1}}
    text = render(params, results, sources)
    assert "| LoRA r4, 16-bit, mean of 2 seeds | 81.25 / 0.500 |" in text
    assert "Prompts name their task first (`model.task_marker`)." in text
    unmarked = params_with({"tasks": {"sentiment": ["fpb"]}, "model": {"task_marker": False}})
    assert "task_marker" not in render(unmarked, results, sources)
    assert "| fpb | 75.00 | 87.50 | 81.25 | 8.84 |" in text
    assert "| the training split's most common answer, every time: strict accuracy (free text: ROUGE-L) | 62.50 |" in text
    assert "## Validation (the best validated step kept)" in text
    assert "| sentiment | 4 | 15 of 20 | 37.5 | 0.5000 |" in text  # kept steps 10 and 20, accuracies 25 and 50 %
    assert summary["train"]["sentiment"]["val_accuracy"] == 0.375
    # `dvc metrics show`'s row for the task: the scores above, worked out by hand
    assert task_metrics(params, summary) == {"fpb": {
        "base": 0.5, "lora": 0.8125, "most_common": 0.625, "gain": 0.3125, "strict": 0.6875, "f1": 0.5,
        "sd": round(statistics.stdev([0.75, 0.875]), 4), "trainable": 3}}
    assert headlines(summary) == ["  fpb           accuracy base  50.00 -> adapter  81.25  (most common answer 62.50)"]


def test_a_free_text_tasks_metrics_row_is_its_rouge_l():
    params = params_with({"tasks": {"later": ["xbrl_term"]}})
    summary = {"xbrl_term": {"base": {"rouge_l": 0.1}, "lora": {"rouge_l": 0.3, "invalid_rate": 0.0}, "seeds": {},
                             "gain": {"rouge_l": 0.2}, "most_common": {"rouge_l": 0.12}},
               "train": {"later": {"trainable_params": 7}}}
    assert task_metrics(params, summary) == {"xbrl_term": {"base": 0.1, "lora": 0.3, "most_common": 0.12, "gain": 0.2,
                                                           "trainable": 7}}


def test_the_adapter_is_paired_with_the_base_model_and_with_the_most_common_answer(tmp_path):
    params = params_with({"tasks": {"sentiment": ["fpb"]}, "train": {"seeds": [3]}})
    # counted by hand over 10 examples: base right on 1, the bar on 6, the adapter on 8
    base = [True] + [False] * 9
    bar = [True] * 6 + [False] * 4
    adapter = [False] + [True] * 8 + [False]
    base_rows = [{"context": str(i), "correct": c, "most_common_correct": m} for i, (c, m) in enumerate(zip(base, bar))]
    for path, rows in ((tmp_path / "base" / "sentiment" / "fpb.jsonl", base_rows),
                       (tmp_path / "lora" / "sentiment" / "seed-3" / "fpb.jsonl", [{"correct": c} for c in adapter])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    [against_base] = significance(params, tmp_path)
    [against_bar] = significance(params, tmp_path, "most_common")
    assert (against_base.accuracy_a, against_base.accuracy_b, against_base.only_a, against_base.only_b) == (0.1, 0.8, 1, 8)
    assert (against_bar.accuracy_a, against_bar.accuracy_b, against_bar.only_a, against_bar.only_b) == (0.6, 0.8, 1, 3)
    assert against_bar.p_value == pytest.approx(0.625)  # McNemar: 2 * P(Binomial(4, 0.5) <= 1) = 2 * 5/16
    assert against_base.p_value == pytest.approx(0.0390625)  # 2 * P(Binomial(9, 0.5) <= 1) = 2 * 10/512
    assert (against_base.verdict, against_bar.verdict) == ("B better", "cannot tell apart")
