import dataclasses
import subprocess
import sys
import typing

import pytest
import yaml

from conftest import REPO, params_with, run_env
from finlora.config import Params, load_params, parse_params
from finlora.errors import FinloraError
from finlora.protocols import answer_length


def default_raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.lora.alpha == 32 and params.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert params.all_tasks == ["fpb", "fiqa", "tfns", "nwgi", "headline", "ner", "finer", "xbrl_tags", "xbrl_value"]
    assert params.data.split_sizes("ner").train == 96
    assert params.data.split_sizes("fpb").train == params.data.train_size


@pytest.mark.parametrize("section, key, value, expected", [
    ("lora", "rnak", 4, "unknown key 'lora.rnak'"),
    ("lora", "rank", 0, "lora.rank = 0 is not valid; valid: an integer >= 1"),
    ("lora", "rank", "four", "lora.rank must be an integer"),
    ("lora", "dropout", 1.5, "lora.dropout = 1.5"),
    ("train", "lr", 0, "train.lr = 0.0 is not valid; valid: a number > 0"),
    ("train", "lr", -1e-4, "train.lr"),
    ("train", "optimizer", "zero_one_adam", "unknown key 'train.optimizer'"),
    ("train", "zero_stage", 3, "train.zero_stage"),
    ("train", "validation_fraction", 0.5, "train.validation_fraction = 0.5 is not valid; valid: a fraction from 0"),
    ("train", "validate_every", 0, "train.validate_every = 0 is not valid; valid: an integer >= 1"),
    ("quant", "bits", 3, "quant.bits = 3 is not valid; valid: 4 | 8 | 16"),
    ("data", "source", "web", "sample | hub | local"),
    ("eval", "batch_size", True, "eval.batch_size must be an integer"),
    ("model", "base", "./no/such/folder", "no such folder"),
])
def test_bad_values_name_the_key_and_valid_values(section, key, value, expected):
    raw = default_raw()
    raw[section][key] = value
    with pytest.raises(FinloraError) as error:
        parse_params(raw)
    assert expected in str(error.value)


def test_keeping_the_best_step_needs_a_validation_split():
    raw = default_raw()
    raw["train"].update(validation_fraction=0, keep_best=True)
    with pytest.raises(FinloraError, match="train.keep_best = True is not valid; valid: false while "
                                           "train.validation_fraction is 0"):
        parse_params(raw)
    raw["train"]["keep_best"] = False
    assert parse_params(raw).train.validation_fraction == 0


def test_unknown_task_and_duplicate_task():
    raw = default_raw()
    raw["tasks"]["sentiment"] = ["fpb", "sentimnet"]
    with pytest.raises(FinloraError, match="tasks.sentiment = 'sentimnet' is not valid; valid: tasks from fpb"):
        parse_params(raw)
    raw["tasks"] = {"a": ["fpb"], "b": ["fpb"]}
    with pytest.raises(FinloraError, match="each task in one group only"):
        parse_params(raw)


def test_unknown_section_lists_valid_sections():
    raw = default_raw()
    raw["optimiser"] = {}
    with pytest.raises(FinloraError) as error:
        parse_params(raw)
    assert "unknown key 'optimiser'" in str(error.value) and "valid keys: model, data, tasks" in str(error.value)


def test_hub_id_is_accepted_without_network():
    raw = default_raw()
    raw["model"]["base"] = "meta-llama/Llama-3.1-8B-Instruct"
    assert parse_params(raw).model.base == "meta-llama/Llama-3.1-8B-Instruct"


def test_validate_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    raw = default_raw()
    raw["lora"]["rank"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "finlora.cli", "validate"], cwd=tmp_path,
                            capture_output=True, text=True, env=run_env())
    assert result.returncode == 2
    assert "lora.rank = 0 is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_params_yaml_is_the_one_source_of_defaults():
    """No schema field has a default of its own, so nothing can disagree with params.yaml."""
    sections = [Params] + [hint for hint in typing.get_type_hints(Params).values() if dataclasses.is_dataclass(hint)]
    for section in sections:
        for field in dataclasses.fields(section):
            assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING, \
                f"{section.__name__}.{field.name}"
    raw = default_raw()
    del raw["train"]["lr"]
    with pytest.raises(FinloraError, match="params.yaml: missing key 'train.lr'"):
        parse_params(raw, source="params.yaml")


def test_per_task_mappings_may_be_left_out():
    """`dvc exp run -S ~data.sizes` removes the key: no per-task sizes, not an error."""
    raw = default_raw()
    del raw["data"]["sizes"], raw["eval"]["max_new_tokens_by_task"]
    params = parse_params(raw)
    assert params.data.split_sizes("ner").train == raw["data"]["train_size"]
    assert answer_length(params.eval, "finer") == raw["eval"]["max_new_tokens"]


def test_changes_replace_keys_of_a_section_and_tasks_whole():
    params = params_with({"train": {"lr": 0.5}, "tasks": {"solo": ["fpb"]}})
    assert params.train.lr == 0.5 and params.train.batch_size == default_raw()["train"]["batch_size"]
    assert params.tasks == {"solo": ["fpb"]}


def test_a_group_trains_with_its_own_settings_where_it_has_them():
    params = params_with({"train": {"lr": 1e-4, "epochs": 4, "batch_size": 16,
                                    "by_group": {"xbrl": {"epochs": 1, "batch_size": 2, "grad_accum": 2,
                                                          "prefix_packing": True}}}})
    xbrl, sentiment = params.for_group("xbrl").train, params.for_group("sentiment").train
    assert (xbrl.epochs, xbrl.batch_size, xbrl.grad_accum, xbrl.lr, xbrl.prefix_packing) == (1, 2, 2, 1e-4, True)
    assert (sentiment.epochs, sentiment.batch_size, sentiment.grad_accum, sentiment.prefix_packing) == (4, 16, 1, False)
    assert isinstance(xbrl.epochs, int)


@pytest.mark.parametrize("by_group, message", [
    ({"xbrl": {"epochs": 0}}, "train.by_group.xbrl.epochs = 0 is not valid"),
    ({"xbrl": {"epochs": 1.5}}, "train.by_group.xbrl.epochs = 1.5 is not valid; valid: an integer"),
    ({"xbrl": {"optimizer": 1}}, "train.by_group.xbrl.optimizer = 1.0 is not valid; valid: a key among lr, epochs"),
    ({"xbrl": {"prefix_packing": 1}}, "train.by_group.xbrl.prefix_packing = 1.0 is not valid; valid: true or false"),
    ({"xbrl": {"batch_size": True}}, "train.by_group.xbrl.batch_size = True is not valid; valid: an integer"),
    ({"xbrl": {"lr": True}}, "train.by_group.xbrl.lr = True is not valid; valid: a number > 0"),
    ({"xbrl": {"epochs": "four"}}, "train.by_group.xbrl.epochs must be a number or true or false"),
])
def test_bad_group_settings_are_named(by_group, message):
    with pytest.raises(FinloraError, match=message.replace(".", r"\.")):
        params_with({"train": {"by_group": by_group}})


def test_the_hostfile_is_none_for_this_machine_or_an_existing_file(tmp_path):
    assert params_with({}).train.hostfile == "none"
    with pytest.raises(FinloraError, match="train.hostfile = '/job/hostfile' is not valid; valid: none"):
        params_with({"train": {"hostfile": "/job/hostfile"}})
    hosts = tmp_path / "hosts"
    hosts.write_text("node1 slots=8\nnode2 slots=8\n")
    assert params_with({"train": {"hostfile": str(hosts)}}).train.hostfile == str(hosts)


@pytest.mark.parametrize("alpha, rank, expected", [("2r", 8, 16), ("r", 4, 4), ("0.5r", 16, 8), (32, 8, 32)])
def test_alpha_may_be_given_relative_to_the_rank(alpha, rank, expected):
    assert params_with({"lora": {"alpha": alpha, "rank": rank}}).lora.alpha == expected


@pytest.mark.parametrize("alpha", ["0.5r", "xr", "r2"])
def test_an_alpha_that_is_not_a_whole_multiple_is_named(alpha):
    with pytest.raises(FinloraError, match="lora.alpha"):
        params_with({"lora": {"alpha": alpha, "rank": 3}})


@pytest.mark.parametrize("name, modules", [("attention", ["q_proj", "k_proj", "v_proj", "o_proj"]),
                                           ("qkv", ["q_proj", "k_proj", "v_proj"]), ("all-linear", ["all-linear"])])
def test_target_sets_by_name(name, modules):
    assert params_with({"lora": {"target_modules": name}}).lora.target_modules == modules
