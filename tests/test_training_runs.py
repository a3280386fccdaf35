"""Training end to end on the tiny model: quantisation, LoRA variants, gradient checkpointing,
data parallelism under the real DeepSpeed launcher, and resuming after SIGKILL."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import REPO, logged, params_with, run_env
from conftest import fpb_records as generated_records
from finlora import models, preflight, training
from finlora.files import write_jsonl
from finlora.launch import SHARED_MEMORY_PREFIX, free_port, remove_orphaned_shared_memory

SCRIPT = '''
import json, os, signal, sys
from pathlib import Path
from finlora import training
from finlora.config import with_changes
from finlora.files import read_jsonl
args = json.loads(sys.argv[-1])
if args.get("kill_at") is not None:  # SIGKILL this process before that optimizer step, as the OOM killer would
    step = training.Recipe._optimizer_step
    def killing_step(recipe, index):
        if index == args["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(recipe, index)
    training.Recipe._optimizer_step = killing_step
training.train(with_changes(args["params"], args["params_file"]), read_jsonl(args["records"]), Path(args["base"]), Path(args["out"]) / "adapter",
               Path(args["out"]) / "metrics.json", Path(args["out"]) / "live", Path(args["out"]) / "checkpoints",
               validation=read_jsonl(args["validation"]) if args.get("validation") else ())
'''


def fpb_records(n: int) -> list[dict]:
    return generated_records(n, seed=9)


def raw_params(**train) -> dict:
    return {"tasks": {"s": ["fpb"]}, "train": {"lr": 1e-2, "batch_size": 4, "epochs": 1, **train}, "lora": {"rank": 4}}


@pytest.mark.parametrize("bits, lora", [(4, {}), (8, {}), (16, {"variant": "dora"}), (16, {"variant": "rslora"}),
                                        (4, {"variant": "dora"}), (16, {"target_modules": "all-linear"})])
def test_quantised_and_variant_training(tiny_base, tmp_path, monkeypatch, bits, lora):
    import math

    raw = raw_params(epochs=3)
    raw["quant"] = {"bits": bits}
    raw["lora"].update(lora)
    trained, wrapped = [], []
    real_add_lora = models.add_lora

    def recording_add_lora(model, *args, **kwargs):  # the model training wraps, as training loaded it
        trained.append(type(model.model.layers[0].self_attn.q_proj).__name__)
        wrapped.append(real_add_lora(model, *args, **kwargs))
        return wrapped[-1]

    monkeypatch.setattr(models, "add_lora", recording_add_lora)
    params = params_with(raw)
    metrics = training.train(params, fpb_records(8), tiny_base, tmp_path / "a", tmp_path / "m.json",
                             live_dir=tmp_path / "live")
    assert trained == [{4: "Linear4bit", 8: "Linear8bitLt", 16: "Linear"}[bits]] and metrics["steps"] == 6
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "live", "m.json"]  # no checkpoints left
    losses = logged(tmp_path / "live")
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]  # it learns
    saved = load_file(tmp_path / "a" / "adapter_model.safetensors")
    assert all(weight.abs().max() > 0 for name, weight in saved.items() if "lora_B" in name)  # peft starts B at 0
    # each adapted layer's scaling as the variant defines it: alpha / sqrt(r) for rsLoRA, alpha / r otherwise
    rank, alpha = params.lora.rank, params.lora.alpha
    expected = alpha / math.sqrt(rank) if lora.get("variant") == "rslora" else alpha / rank
    scalings = [module.scaling["default"] for module in wrapped[0].modules() if hasattr(module, "lora_B")]
    assert scalings and all(scaling == pytest.approx(expected) for scaling in scalings)
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["use_dora"] == (lora.get("variant") == "dora")
    assert config["use_rslora"] == (lora.get("variant") == "rslora")
    assert config["target_modules"] == sorted(config["target_modules"])  # not in a set's per-process order
    if lora.get("target_modules") == "all-linear":
        targeted = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}
        assert {"q_proj", "o_proj", "gate_proj", "down_proj"} <= targeted


def test_kbit_training_keeps_unquantized_weights_in_the_compute_dtype(tiny_base, monkeypatch):
    """No fp32 upcast of embeddings, LM head and norms (what peft's k-bit preparation does). The
    compute dtype is bfloat16, as on a GPU that has it (on a CPU it is float32, and the check empty)."""
    monkeypatch.setattr(models, "compute_dtype", lambda: torch.bfloat16)
    base = models.load_base(tiny_base, 4)
    assert type(base.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    model = models.add_lora(base, params_with(raw_params()).lora, gradient_checkpointing=True)
    inner = model.get_base_model()
    assert inner.model.embed_tokens.weight.dtype == torch.bfloat16
    assert inner.model.norm.weight.dtype == torch.bfloat16
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def int8_lora_model(base: Path, freed: bool):
    """The tiny model in int8 with a LoRA adapter and gradient checkpointing; with `freed` False
    its int8 layers are bitsandbytes' own again, for comparison."""
    import bitsandbytes as bnb

    from finlora.int8 import FrozenLinear8bitLt

    torch.manual_seed(0)
    model = models.add_lora(models.load_base(base, 8), params_with(raw_params()).lora, gradient_checkpointing=True)
    frozen = [m for m in model.modules() if isinstance(m, FrozenLinear8bitLt)]
    assert len(frozen) == 2 * 7  # every linear layer of both decoder layers
    if not freed:
        for module in frozen:
            module.__class__ = bnb.nn.Linear8bitLt
    return model.train(), frozen


def test_int8_layers_keep_nothing_of_their_inputs_under_gradient_checkpointing(tiny_base):
    import gc
    import weakref

    ids = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29, 33, 37]])
    kept, gradients = {}, {}
    for freed in (False, True):
        model, int8_layers = int8_lora_model(tiny_base, freed)
        inputs = []
        for layer in int8_layers:
            layer.register_forward_pre_hook(lambda _, args: inputs.append(weakref.ref(args[0])))
        loss = model(input_ids=ids, labels=ids).loss
        gc.collect()
        kept[freed] = sum(ref() is not None for ref in inputs)
        loss.backward()
        gradients[freed] = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert kept[False] > 0 and kept[True] == 0  # bitsandbytes' own layers keep theirs until backward
    assert gradients[True].keys() == gradients[False].keys()
    for name, grad in gradients[True].items():
        torch.testing.assert_close(grad, gradients[False][name], msg=name)


def test_training_leaves_no_shared_memory_behind(tiny_base, tmp_path):
    """DeepSpeed's CPU all-reduce buffer in /dev/shm (66 MB a run) is removed when training ends."""
    import os

    records = tmp_path / "records.jsonl"
    write_jsonl(records, fpb_records(8))
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    port = str(free_port())
    env = dict(run_env(), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    args = json.dumps({"params": raw_params(), "params_file": str(REPO / "params.yaml"), "records": str(records), "base": str(tiny_base), "out": str(tmp_path)})
    result = subprocess.run([sys.executable, str(script), args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not [name for name in os.listdir("/dev/shm") if f"_127.0.0.1_{port}_" in name]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm")
def test_shared_memory_left_by_killed_runs_is_removed_and_buffers_in_use_stay():
    import mmap

    orphan, held, mapped = (Path(f"{SHARED_MEMORY_PREFIX}test_{n}_0") for n in (1, 2, 3))
    orphan.write_bytes(b"left by a killed run")
    mapped.write_bytes(bytes(mmap.PAGESIZE))
    with mapped.open("r+b") as handle:  # mapped, its descriptor closed
        mapping = mmap.mmap(handle.fileno(), 0)
    try:
        with held.open("wb"):  # open, as DeepSpeed keeps its buffer from creation
            remove_orphaned_shared_memory()
            assert not orphan.exists() and held.exists() and mapped.exists()
    finally:
        mapping.close()
        held.unlink(missing_ok=True)
        mapped.unlink(missing_ok=True)


def test_gradient_checkpointing_gives_the_same_loss(tiny_base, tmp_path):
    runs = []
    for checkpointing in (False, True):
        out = tmp_path / str(checkpointing)
        training.train(params_with(raw_params(gradient_checkpointing=checkpointing)), fpb_records(8), tiny_base,
                       out / "a", out / "m.json", out / "l")
        runs.append((out / "l" / "plots" / "metrics" / "train" / "loss.tsv").read_text())
    assert runs[0] == runs[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="Liger's kernels need a CUDA GPU")
@pytest.mark.parametrize("bits", [4, 16])
def test_liger_kernels_train_to_the_same_losses(tiny_base, tmp_path, bits):
    curves = []
    for liger in (False, True):  # in this order: Liger's patch stays in the process for Llama models
        raw = raw_params(liger_kernel=liger)
        raw["quant"] = {"bits": bits}
        params = params_with(raw)
        preflight.check_environment(params, tiny_base)
        out = tmp_path / str(liger)
        training.train(params, fpb_records(8), tiny_base, out / "a", out / "m.json", out / "live")
        curves.append(losses(out))
    assert curves[1] == pytest.approx(curves[0], rel=2e-2)


def launch(tmp_path: Path, name: str, processes: int, params: dict, base: Path, records: Path,
           kill_at: int | None = None, validation: Path | None = None):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / name
    args = json.dumps({"params": params, "params_file": str(REPO / "params.yaml"), "records": str(records),
                       "base": str(base), "out": str(out), "kill_at": kill_at,
                       "validation": str(validation) if validation else None})
    command = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", str(processes),
               "--master_port", str(free_port()), str(script), args]
    return out, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env())


def losses(out: Path) -> list[float]:
    return logged(out / "live")


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_same_global_batch(tiny_base, tmp_path):
    """One process, two processes, and two processes under ZeRO 2 (gradients and optimizer states
    split between them): the same losses and adapter, to 1e-4 relative."""
    records = tmp_path / "records.jsonl"
    write_jsonl(records, fpb_records(16))
    runs = {}
    for name, processes, per_device, zero in (("one", 1, 4, 0), ("two", 2, 2, 0), ("two-zero2", 2, 2, 2)):
        params = raw_params(batch_size=per_device, zero_stage=zero)
        params["lora"]["dropout"] = 0.0  # dropout masks depend on the layout; everything else must not
        out, process = launch(tmp_path, name, processes, params, tiny_base, records)
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, output[-3000:]
        runs[name] = out
    ran = {name: json.loads((out / "metrics.json").read_text()) for name, out in runs.items()}
    assert [(ran[name]["world_size"], ran[name]["zero_stage"]) for name in runs] == [(1, 0), (2, 0), (2, 2)]
    adapters = {name: load_file(out / "adapter" / "adapter_model.safetensors") for name, out in runs.items()}
    for name in ("two", "two-zero2"):
        assert losses(runs[name]) == pytest.approx(losses(runs["one"]), rel=1e-4)  # stated tolerance: 1e-4 relative
        assert all((adapters["one"][k] - adapters[name][k]).abs().max() < 1e-4 for k in adapters["one"])
    assert losses(runs["one"])[-1] < losses(runs["one"])[0]  # it learned, so equal losses are not equal noise


def kill_then_resume(tmp_path: Path, params: dict, base: Path, n_records: int = 32, kill_at: int = 11):
    """An uninterrupted training, and the same training SIGKILLed before step `kill_at` then run
    again: (reference out, resumed out, /dev/shm files the kill left). Checks the kill left no
    adapter but a checkpoint, and the rerun said it resumed."""
    records = tmp_path / "records.jsonl"
    write_jsonl(records, fpb_records(n_records))
    reference, process = launch(tmp_path, "reference", 1, params, base, records)
    assert process.wait(timeout=600) == 0
    killed, process = launch(tmp_path, "killed", 1, params, base, records, kill_at=kill_at)
    output = process.communicate(timeout=600)[0]
    assert process.returncode != 0 and not (killed / "adapter").exists(), output[-3000:]
    assert (killed / "checkpoints" / "fingerprint").is_file()
    left_by_the_kill = set(Path("/dev/shm").glob(Path(SHARED_MEMORY_PREFIX).name + "*"))
    _, process = launch(tmp_path, "killed", 1, params, base, records)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output[-3000:]
    step = (kill_at - 1) // params["train"]["checkpoint_every"] * params["train"]["checkpoint_every"]
    assert f"resuming from the checkpoint at step {step}" in output
    return reference, killed, left_by_the_kill


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_checkpoint(tiny_base, tmp_path):
    params = raw_params(checkpoint_every=2, epochs=2)  # 16 steps; the kill comes before step 11
    reference, killed, left_by_the_kill = kill_then_resume(tmp_path, params, tiny_base)
    assert left_by_the_kill  # DeepSpeed's all-reduce buffer, which only a clean exit removes
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 10 and metrics["steps"] == 16
    assert losses(killed) == pytest.approx(losses(reference), rel=1e-4)
    a, b = (load_file(run / "adapter" / "adapter_model.safetensors") for run in (reference, killed))
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
    assert not (killed / "checkpoints").exists()  # removed once training finished
    assert not [path for path in left_by_the_kill if path.exists()]  # the next training removed it


@pytest.mark.slow
def test_a_keep_best_training_killed_mid_way_resumes_to_the_same_best_step_and_adapter(tiny_base, tmp_path):
    """The checkpoint carries the validations and the best step's weights: the resumed run keeps
    the step the uninterrupted one kept, and its adapter. A checkpoint of other settings or data is
    another run's: not resumed."""
    records, validation = tmp_path / "records.jsonl", tmp_path / "validation.jsonl"
    write_jsonl(records, fpb_records(32))
    write_jsonl(validation, generated_records(6, seed=4))
    # a learning rate high enough that the validation loss is lowest before the end, so the kept
    # step is not the last and only the checkpoint's record of it can give it back
    params = raw_params(checkpoint_every=2, epochs=2, keep_best=True, validation_fraction=0.05, validate_every=2, lr=0.3)
    reference, process = launch(tmp_path, "reference", 1, params, tiny_base, records, validation=validation)
    assert process.wait(timeout=600) == 0
    kept = json.loads((reference / "metrics.json").read_text())
    assert kept["kept_step"] < 11 < kept["steps"]  # the best step comes before the kill

    killed, process = launch(tmp_path, "killed", 1, params, tiny_base, records, kill_at=11, validation=validation)
    assert process.wait(timeout=600) != 0
    for name, changed, data in (("rank", {**params, "lora": {"rank": 8}}, records), ("data", params, validation)):
        shutil.copytree(killed / "checkpoints", tmp_path / name / "checkpoints")  # the killed run's, left here
        _, process = launch(tmp_path, name, 1, changed, tiny_base, data, kill_at=1)  # dies at its first step
        output = process.communicate(timeout=600)[0]
        assert "resuming" not in output and "train:" in output, (name, output[-3000:])  # started afresh
    _, process = launch(tmp_path, "killed", 1, params, tiny_base, records, validation=validation)
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0 and "resuming from the checkpoint at step 10" in output, output[-3000:]
    resumed = json.loads((killed / "metrics.json").read_text())
    assert (resumed["kept_step"], resumed["val_accuracy"], resumed["val_loss"]) == \
        (kept["kept_step"], kept["val_accuracy"], kept["val_loss"])
    a, b = (load_file(run / "adapter" / "adapter_model.safetensors") for run in (reference, killed))
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)


def stage_project(folder: Path, base: Path, records: list[dict], hostfile: str = "none", **train) -> Path:
    """A folder to run the train stage in: params.yaml, prepared data, the base model."""
    folder.mkdir(parents=True)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["tasks"] = {"s": ["fpb"]}
    raw["lora"].update(rank=4, dropout=0.0)  # dropout masks depend on the layout; everything else must not
    raw["train"].update(lr=1e-2, hostfile=hostfile, **train)
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    write_jsonl(folder / "prepared" / "fpb" / "train.jsonl", records)
    return folder


def train_stage(folder: Path, base: Path, node: int | None = None, port: int | None = None) -> subprocess.Popen:
    """`python -m finlora.launch deepspeed ... stages/train.py` as dvc.yaml runs it; with `node`, as
    a scheduler runs it on that node (FINLORA_NODE_RANK and the shared rendezvous set)."""
    env = run_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # an activated environment
    if node is not None:
        env.update(FINLORA_NODE_RANK=str(node), FINLORA_MASTER_ADDR="127.0.0.1", FINLORA_MASTER_PORT=str(port))
    command = [sys.executable, "-m", "finlora.launch", "deepspeed", "--num_gpus", "1", str(REPO / "stages" / "train.py"),
               "s", "--seed", "42", "--data", "prepared", "--base", str(base), "--adapter", "adapter", "--metrics", "metrics.json",
               "--live", "live"]
    return subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def two_nodes(tmp_path: Path, name: str, base: Path, records: list[dict], **train) -> tuple[Path, list[subprocess.Popen]]:
    """Two "nodes" on this machine: two launchers, node ranks 0 and 1, one process each, one
    hostfile naming two local addresses; each node in its own folder, as on its own disk."""
    hostfile = tmp_path / f"{name}-hosts"
    hostfile.write_text("127.0.0.1 slots=1\n127.0.0.2 slots=1\n")
    port = free_port()
    folders = [stage_project(tmp_path / f"{name}-node{node}", base, records, str(hostfile), batch_size=2, **train)
               for node in (0, 1)]
    return folders[0], [train_stage(folder, base, node, port) for node, folder in enumerate(folders)]


@pytest.mark.slow
def test_two_nodes_train_as_one_process_on_the_same_global_batches(tiny_base, tmp_path):
    records = fpb_records(16)
    single = stage_project(tmp_path / "single", tiny_base, records, batch_size=4)
    process = train_stage(single, tiny_base)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    # the stage's log as DVC shows it: no deprecation warning (ours, or peft's old name, filtered in finlora.models)
    assert [line for line in output.splitlines() if "FutureWarning" in line or "DeprecationWarning" in line] == []

    first, nodes = two_nodes(tmp_path, "two", tiny_base, records)
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert json.loads((first / "metrics.json").read_text())["world_size"] == 2
    assert logged(first / "live") == pytest.approx(logged(single / "live"), rel=1e-4)
    second = tmp_path / "two-node1"
    assert not (second / "adapter").exists() and not (second / "metrics.json").exists()  # global rank 0 writes


@pytest.mark.slow
def test_a_killed_node_ends_the_other_with_a_clear_error_and_no_adapter(tiny_base, tmp_path):
    first, nodes = two_nodes(tmp_path, "kill", tiny_base, fpb_records(64), epochs=50)
    deadline = time.time() + 120
    while time.time() < deadline and not list((first / "live").rglob("loss.tsv")):
        time.sleep(0.1)  # both nodes are training once rank 0 logs its first loss
    assert list((first / "live").rglob("loss.tsv")), "training never started"
    os.killpg(nodes[1].pid, signal.SIGKILL)
    output = nodes[0].communicate(timeout=120)[0]
    nodes[1].wait()
    assert nodes[0].returncode != 0
    assert "finlora: error: another process of this training ended or cannot be reached" in output, output[-3000:]
    assert not (first / "adapter").exists() and not list(first.glob(".adapter.*"))
