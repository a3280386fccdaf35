"""`finlora sweep`: experiments against whatever params they vary, every task kind, and the study's
plot data (accuracy and trainable parameters against the rank per quantisation and target set)."""

import csv

import yaml

from conftest import REPO
from finlora.sweep import collect, markdown, rows, varied, write_plot_data

BASE = yaml.safe_load((REPO / "params.yaml").read_text())


def experiment(name, accuracy, trainable, state=None, **changes):
    params = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes.items():
        section, field = key.split("__")
        params[section][field] = value
    tasks = {"fpb": {"base": 0.0, "lora": accuracy, "strict": accuracy, "f1": accuracy, "trainable": trainable},
             "xbrl_value": {"base": 0.0, "lora": accuracy / 2, "strict": accuracy / 2, "trainable": trainable}}
    metrics = {f"metrics/tasks/{task}.json": {"data": columns} for task, columns in tasks.items()}
    metrics["metrics/report.json"] = {"data": {"lora": 1.0}}  # a metrics file elsewhere: not a task's
    node = {"name": name, "data": {"rev": name, "params": {"params.yaml": {"data": params}}, "metrics": metrics}}
    return {**node, "executor": {"state": state}} if state else node


SHOWN = [{"rev": "workspace", **experiment("workspace", 0.70, 100)},
         {"experiments": [{"revs": [experiment("r2-qkv", 0.60, 50, lora__rank=2),
                                    experiment("r8-att", 0.80, 300, lora__rank=8,
                                               lora__target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
                                    experiment("r8-qkv-4bit", 0.75, 200, lora__rank=8, quant__bits=4),
                                    experiment("r8-qkv-4bit", 0.75, 200, lora__rank=8, quant__bits=4)]},
                          {"revs": [experiment("queued", 0.1, 1, state="queued", lora__rank=64)]}]}]


def test_rows_carry_the_varied_params_and_every_task_kind():
    found = collect(SHOWN)
    assert [e["name"] for e in found] == ["workspace", "r2-qkv", "r8-att", "r8-qkv-4bit"]  # once each, none queued
    assert varied(found) == ["lora.rank", "lora.target_modules", "quant.bits"]
    table = rows(found)
    assert len(table) == 8 and set(table[0]) == {"experiment", "lora.rank", "lora.target_modules", "quant.bits", "task",
                                                 "accuracy", "accuracy_sd", "strict_accuracy", "f1_weighted",
                                                 "trainable_params"}
    values = [row for row in table if row["task"] == "xbrl_value"]
    assert [row["f1_weighted"] for row in values] == [None] * 4 and values[1]["accuracy"] == 0.30
    text = markdown(table, varied(found))
    assert text.splitlines()[0] == "| experiment | lora.rank | lora.target_modules | quant.bits | fpb | xbrl_value | mean |"
    assert "| r2-qkv | 2 | " in text and "| 60.00 | 30.00 | 45.00 |" in text


def test_plot_data_by_quantisation_and_target_set(tmp_path):
    written = write_plot_data(rows(collect(SHOWN)), tmp_path)
    names = sorted(path.name for path in written)
    assert names == ["accuracy-16bit-q-proj-k-proj-v-proj-o-proj.csv", "accuracy-16bit-q-proj-k-proj-v-proj.csv",
                     "accuracy-4bit-q-proj-k-proj-v-proj.csv", "trainable-params.csv"]
    qkv16 = list(csv.DictReader((tmp_path / "accuracy-16bit-q-proj-k-proj-v-proj.csv").open()))
    assert [(r["lora.rank"], r["task"], r["accuracy"]) for r in qkv16] == [
        ("2", "fpb", "0.6"), ("4", "fpb", "0.7"), ("2", "xbrl_value", "0.3"), ("4", "xbrl_value", "0.35")]
    params = list(csv.DictReader((tmp_path / "trainable-params.csv").open()))
    assert [(r["lora.rank"], r["trainable_params"]) for r in params] == [("2", "50"), ("4", "100"), ("8", "300"), ("8", "200")]


def test_experiments_of_several_seeds_show_their_spread():
    two_seeds = experiment("r4-2seeds", 0.70, 100, train__seeds=[1, 2])
    two_seeds["data"]["metrics"]["metrics/tasks/fpb.json"]["data"]["sd"] = 0.0354
    found = collect([{"rev": "workspace", **experiment("workspace", 0.65, 100)}, two_seeds])
    table = rows(found)
    assert [row["accuracy_sd"] for row in table if row["task"] == "fpb"] == [None, 0.0354]
    text = markdown(table, varied(found))
    assert "| r4-2seeds | [1, 2] | 70.00 ± 3.54 | 35.00 | 52.50 |" in text
    assert "| workspace | [42] | 65.00 | 32.50 | 48.75 |" in text


def test_plot_files_are_named_by_the_experiments_own_bits_and_targets(tmp_path):
    """Bits and targets that no experiment varies still name the files, from params.yaml's values."""
    found = [e for e in collect(SHOWN) if e["name"] in ("workspace", "r2-qkv")]  # ranks 4 and 2, 16 bits, q/k/v
    names = sorted(path.name for path in write_plot_data(rows(found), tmp_path))
    assert names == ["accuracy-16bit-q-proj-k-proj-v-proj.csv", "trainable-params.csv"]
    with open(tmp_path / names[0]) as handle:
        assert [row["lora.rank"] for row in csv.DictReader(handle)] == ["2", "4", "2", "4"]  # fpb, then xbrl_value
