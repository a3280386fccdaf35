"""The paper profiles validate and build the paper's DeepSpeed, peft and bitsandbytes settings,
without downloading anything."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_env
from finlora import models, training
from finlora.config import parse_params
from finlora.errors import FinloraError
from finlora.profiles import apply, load_profile, overrides

PROFILES = REPO / "profiles"
PAPER_TASKS = ["fpb", "fiqa", "tfns", "nwgi", "headline", "ner", "finer", "xbrl_tags", "xbrl_value"]  # Table 3


def paper_params(name):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    return parse_params(apply(raw, load_profile(name, PROFILES)))


@pytest.mark.parametrize("name, bits, rank", [("paper-4bit-r4", 4, 4), ("paper-8bit-r8", 8, 8)])
def test_paper_profiles_build_the_papers_configs(name, bits, rank):
    params = paper_params(name)
    assert params.model.base == "meta-llama/Llama-3.1-8B-Instruct" and params.data.source == "finlora"
    assert params.all_tasks == PAPER_TASKS and params.eval.protocol == "finlora-2025-01" and not params.model.chat_template
    assert params.train.sampling == "proportional"  # FinLoRA concatenates: every record once
    finer = params.for_group("finer").train  # the paper's schedule, not the CPU default's by_group
    assert (finer.batch_size, finer.grad_accum, finer.max_seq_len, finer.epochs) == (16, 1, 16384, 4)
    xbrl = training.deepspeed_config(params.for_group("xbrl"), world_size=params.train.num_gpus)
    assert (params.for_group("xbrl").train.epochs, xbrl["train_micro_batch_size_per_gpu"],
            xbrl["gradient_accumulation_steps"]) == (1, 2, 2)  # the paper's XBRL schedule
    assert (params.lora.rank, params.lora.alpha, params.lora.dropout) == (rank, 32, 0.1)
    assert params.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert (params.train.lr, params.train.epochs, params.train.num_gpus, params.eval.bits) == (1e-4, 4, 4, 8)
    config = training.deepspeed_config(params, world_size=params.train.num_gpus)
    assert config["train_batch_size"] == 64 and config["train_micro_batch_size_per_gpu"] == 16
    assert config["zero_optimization"] == {"stage": 1}
    quant = models.quantization_config(params.quant.bits)
    if bits == 4:
        assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
    else:
        assert quant.load_in_8bit and not quant.load_in_4bit


def test_the_70b_profile_splits_evaluation_over_the_gpus():
    params = paper_params("paper-70b-4bit-r4")
    assert params.model.base == "meta-llama/Llama-3.1-70B-Instruct" and params.quant.bits == 4
    assert (params.eval.bits, params.eval.device_map, params.train.gradient_checkpointing) == (8, "auto", True)
    assert params.train.batch_size * params.train.grad_accum == 16
    assert set(params.train.by_group) == {"xbrl"} and params.for_group("xbrl").train.max_seq_len == 16384


def test_overrides_round_trip_to_the_same_params():
    profile = load_profile("paper-4bit-r4", PROFILES)
    removed = [o for o in overrides(profile) if o.startswith("~")]
    # emptied or removed, not merged into the defaults: the data sizes and the CPU default's FiNER schedule
    assert removed == ["~data.sizes", "~train.by_group.finer"]
    flat = dict(o.split("=", 1) for o in overrides(profile) if not o.startswith("~"))
    assert flat["lora.target_modules"] == '["q_proj","k_proj","v_proj"]' and flat["train.lr"] == "0.0001"
    rebuilt: dict = {}
    for key, value in flat.items():
        node = rebuilt
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    for removal in removed:  # what the `~` overrides remove is not rebuilt
        *parents, leaf = removal[1:].split(".")
        node = profile
        for parent in parents:
            node = node[parent]
        del node[leaf]
    assert rebuilt == profile


def test_profile_command_prints_dvc_overrides(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "paper-8bit-r8.yaml").write_text((PROFILES / "paper-8bit-r8.yaml").read_text())
    result = subprocess.run([sys.executable, "-m", "finlora.cli", "profile", "paper-8bit-r8"], cwd=tmp_path,
                            capture_output=True, text=True, env=run_env())
    assert result.returncode == 0, result.stderr
    assert "-S quant.bits=8" in result.stdout and "-S model.base=meta-llama/Llama-3.1-8B-Instruct" in result.stdout


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(FinloraError, match="paper-4bit-r4, paper-70b-4bit-r4, paper-8bit-r8"):
        load_profile("paper-2bit", PROFILES)


# FinLoRA's lora/finetune_configs.json at 7e1cf82, per task family: (epochs, batch size, accumulation);
# every recipe has learning rate 1e-4 and Llama-3.1-8B-Instruct
FINETUNE_CONFIGS = {"sentiment": (4, 8, 2), "headline": (4, 8, 2), "ner": (4, 8, 2), "finer": (4, 1, 8),
                    "xbrl": (1, 1, 8), "financebench": (4, 1, 2), "formula": (1, 4, 2), "xbrl_term": (1, 4, 2)}
RECIPES = {"finlora-8bit-r8": (8, 8, "lora"), "finlora-4bit-r4": (4, 4, "lora"),
           "finlora-8bit-r8-dora": (8, 8, "dora"), "finlora-8bit-r8-rslora": (8, 8, "rslora")}


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_later_recipe_profiles_follow_finloras_finetune_configs(name):
    params = paper_params(name)
    bits, rank, variant = RECIPES[name]
    assert (params.quant.bits, params.lora.rank, params.lora.variant) == (bits, rank, variant)
    assert params.model.base == "meta-llama/Llama-3.1-8B-Instruct" and params.eval.protocol == "finlora-2025-08"
    assert set(params.tasks) == set(FINETUNE_CONFIGS) and "fnxl" not in params.all_tasks
    for group, (epochs, batch, accum) in FINETUNE_CONFIGS.items():
        train = params.for_group(group).train
        assert (train.lr, train.epochs, train.batch_size, train.grad_accum) == (1e-4, epochs, batch, accum), group


def test_the_recipe_facts_above_are_finloras():
    """Checked against FinLoRA's own file where the shared reference folder is at hand."""
    import json

    path = REPO.parent / "shared" / "finlora-reference" / "2025-08-06-7e1cf82" / "lora" / "finetune_configs.json"
    if not path.is_file():
        pytest.skip("FinLoRA's finetune_configs.json is not beside this clone")
    configs = json.loads(path.read_text())
    family = {"xbrl_extract": "xbrl"}
    for key, config in configs.items():
        name = key.split("_llama")[0]
        if name == "cfa":  # exams never published
            continue
        expected = FINETUNE_CONFIGS[family.get(name, name)]
        assert (config["num_epochs"], config["batch_size"], config["gradient_accumulation_steps"]) == expected, key
        assert config["learning_rate"] == 1e-4


def test_the_classification_profiles_build_the_studys_settings():
    cpu = paper_params("classify-cpu")
    assert cpu.model.head == "classify" and cpu.model.base == "smollm2-135m"
    assert cpu.all_tasks == ["fpb", "fiqa", "tfns", "nwgi", "headline", "ner", "yelp"]
    assert (cpu.lora.rank, cpu.lora.alpha, cpu.lora.dropout) == (8, 16, 0.05)
    study = paper_params("seed004-llama3-8b")
    assert (study.model.base, study.model.head, study.data.source, study.all_tasks) == (
        "meta-llama/Meta-Llama-3-8B", "classify", "hub", ["yelp"])
    assert (study.lora.rank, study.lora.alpha, study.lora.dropout, study.lora.target_modules) == (8, 16, 0.05, ["all-linear"])
    assert (study.quant.bits, study.train.lr, study.train.epochs, study.train.batch_size) == (4, 1e-4, 1, 8)
    assert (study.data.train_size, study.data.test_size) == (50000, 10000)
    quant = models.quantization_config(study.quant.bits, ("score",))
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.llm_int8_skip_modules == ["score"]
