import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import fpb_records, logged, params_with
from finlora import batching, models, preflight, runtime, training, validation
from finlora.dropout import UniformMaskDropout, use_uniform_mask_dropout
from finlora.errors import FinloraError
from finlora.loss import answer_loss_sum


def tiny_params(**train):
    return params_with({"tasks": {"sentiment": ["fpb"]},
                         "train": {"lr": 1e-2, "batch_size": 4, **train}, "lora": {"rank": 4}})


def test_answer_loss_without_the_end_token_as_input_matches_the_full_sequence_loss(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base)
    encoded, _ = batching.encode(tokenizer, fpb_records(4), 512, chat_template=True)
    batch = batching.collate(encoded, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(e.input_ids) for e in encoded) - 1
    assert len({len(e.input_ids) for e in encoded}) > 1  # padded, with no attention mask
    summed, count = answer_loss_sum(model, batch)
    # transformers' own shifted, masked cross-entropy over each whole example, one at a time
    reference = sum(model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss
                    * batching.answer_tokens(e) for e in encoded)
    assert count == sum(batching.answer_tokens(e) for e in encoded)
    assert torch.allclose(summed, reference, atol=1e-4)


class HostReads(TorchDispatchMode):
    """Counts the operators whose result the host reads (`.item()`, `bool(tensor)`, boolean
    indexing, which must learn how many elements it selects): on a GPU each one makes the host
    wait until the device has run all it was given."""
    READS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default",
             "aten.is_nonzero.default", "aten.equal.default"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        boolean_index = func is torch.ops.aten.index.Tensor and any(
            index is not None and index.dtype == torch.bool for index in args[1])
        self.count += str(func) in self.READS or boolean_index
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_answer_loss_makes_the_host_wait_no_more_than_the_model_itself(tiny_base, checkpointing):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.add_lora(models.load_base(tiny_base), tiny_params().lora, checkpointing).train()
    encoded, _ = batching.encode(tokenizer, fpb_records(4), 512, chat_template=True)
    batch = batching.collate(encoded, tokenizer.pad_token_id)
    decoder = model.get_base_model().get_decoder()
    with HostReads() as model_itself:  # transformers' own check for packed sequences
        decoder(input_ids=batch["input_ids"], use_cache=False).last_hidden_state.sum().backward()
    with HostReads() as finlora:
        summed, count = answer_loss_sum(model, batch)
        summed.backward()
    assert count == sum(batching.answer_tokens(e) for e in encoded)
    assert finlora.count == model_itself.count <= 1
    # what the loss did before: a padding mask, which transformers reads, and answer positions
    # found on the device
    mask = torch.arange(batch["input_ids"].shape[1]) < torch.tensor([[len(e.input_ids) - 1] for e in encoded])
    with HostReads() as masked:
        hidden = decoder(input_ids=batch["input_ids"], attention_mask=mask.long(), use_cache=False).last_hidden_state
        hidden[mask].sum().backward()
    assert masked.count == 3  # transformers reads the mask twice; boolean indexing once


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_uniform_mask_dropout_drops_p_and_scales_the_rest_like_torch(dtype):
    torch.manual_seed(0)
    dropout = UniformMaskDropout(0.1)
    x = torch.ones(1000, 1000, dtype=dtype, requires_grad=True)
    y = dropout(x)
    y.sum().backward()
    assert y.dtype == dtype and abs((y == 0).float().mean().item() - 0.1) < 0.002  # sd 0.0003
    assert torch.equal(y.unique(), torch.tensor([0, 1 / 0.9], dtype=dtype))
    assert torch.equal(x.grad, y.detach())  # the gradient is the scaled mask
    assert dropout.eval()(x) is x


def test_lora_dropouts_get_the_uniform_mask_and_nothing_else(tiny_base):
    model = models.add_lora(models.load_base(tiny_base), tiny_params().lora)
    others = [type(m) for name, m in model.named_modules() if ".lora_dropout." not in name]
    assert use_uniform_mask_dropout(model) == 2 * 3  # 2 layers x q, k, v
    assert [type(m) for name, m in model.named_modules() if ".lora_dropout." not in name] == others
    without = params_with({"tasks": {"sentiment": ["fpb"]}, "lora": {"dropout": 0.0}}).lora
    assert use_uniform_mask_dropout(models.add_lora(models.load_base(tiny_base), without)) == 0


def test_length_grouped_batches_cover_every_example_once_with_little_padding():
    lengths = [10 + (i * 37) % 90 for i in range(200)]
    batches = batching.length_grouped_batches(lengths, 8, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(200))
    real = sum(lengths)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert real / padded > 0.9


def test_too_long_examples_are_dropped_and_counted(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    records = fpb_records(3) + [{"context": "word " * 400, "target": "neutral"}]
    encoded, dropped = batching.encode(tokenizer, records, 128, chat_template=True)
    assert len(encoded) == 3 and dropped == 1


def test_train_writes_a_loadable_adapter_and_metrics(tiny_base, tmp_path):
    params = tiny_params(epochs=2)
    metrics = training.train(params, fpb_records(16), tiny_base, tmp_path / "adapter",
                             tmp_path / "train.json", tmp_path / "live")
    assert json.loads((tmp_path / "train.json").read_text()) == metrics
    assert metrics["steps"] == 8 and metrics["examples"] == 16 and metrics["world_size"] == 1
    assert metrics["trainable_params"] > 0 and metrics["adapter_bytes"] > 1000
    assert metrics["tokens_per_s"] > 0 and metrics["steady_tokens_per_s"] > 0
    tokenizer = models.load_tokenizer(tiny_base, params.model.chat_template)
    encoded, _ = batching.encode(tokenizer, fpb_records(16), params.train.max_seq_len, params.model.chat_template)
    batches = [[encoded[i] for i in micro[0]] for micro in batching.micro_batches(encoded, params, 1)]
    inputs = [batching.collate(batch, tokenizer.pad_token_id)["input_ids"] for batch in batches]
    real = sum(len(e.input_ids) - 1 for batch in batches for e in batch)
    assert metrics["padding_efficiency"] == round(real / sum(ids.numel() for ids in inputs), 3)
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    adapted = models.load_model(tiny_base, tmp_path / "adapter")
    assert any("lora_A" in name for name, _ in adapted.named_parameters())
    assert not list(tmp_path.glob(".adapter*"))  # no temporary folder left behind


def test_training_lowers_the_loss(tiny_base, tmp_path):
    params = tiny_params(epochs=4)
    metrics = training.train(params, fpb_records(16), tiny_base, tmp_path / "a", tmp_path / "m.json", tmp_path / "l")
    assert metrics["final_loss"] < logged(tmp_path / "l")[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("train, message", [({"liger_kernel": True}, "liger_kernel needs a CUDA GPU")])
def test_cuda_only_settings_on_cpu_fail_before_loading_anything(train, message, tmp_path):
    params = params_with({"tasks": {"s": ["fpb"]}, "train": train})
    with pytest.raises(FinloraError, match=message):
        preflight.check_environment(params, tmp_path)  # an empty folder: no model is read


def test_deepspeed_config_follows_params():
    params = params_with({"tasks": {"s": ["fpb"]}, "train": {"batch_size": 4, "grad_accum": 2, "zero_stage": 2}})
    config = training.deepspeed_config(params, world_size=2)
    assert config["train_batch_size"] == 16 and config["zero_optimization"] == {"stage": 2}
    assert config["gradient_accumulation_steps"] == 2


def test_trainings_on_one_machine_run_one_at_a_time(tmp_path):
    """What guards `dvc queue start -j 2`: the train stage runs under finlora.exclusive."""
    import subprocess
    import sys
    import time

    log = tmp_path / "log"
    step = f"import time; open({str(log)!r}, 'a').write('start\\n'); time.sleep(1.5); open({str(log)!r}, 'a').write('end\\n')"
    command = [sys.executable, "-m", "finlora.exclusive", sys.executable, "-c", step]
    first = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while not (log.is_file() and log.read_text()) and time.monotonic() < deadline:  # the first holds the lock now
        time.sleep(0.02)
    second = subprocess.run(command, capture_output=True, text=True)
    first.wait()
    assert log.read_text().split() == ["start", "end", "start", "end"]  # never interleaved
    assert "another training holds" in second.stderr


def test_validation_accuracy_counts_the_answers_greedy_decoding_writes_token_for_token(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base)
    prompts = [tokenizer(f"Input: example {i}\nAnswer: ")["input_ids"] for i in range(6)]
    examples = []
    for i, prompt in enumerate(prompts):
        with torch.no_grad():
            output = model.generate(torch.tensor([prompt]), max_new_tokens=3, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        answer = output[0, len(prompt):].tolist()
        if i % 3 == 0:  # a third of the answers differ from the greedy one in their last token
            answer[-1] = (answer[-1] + 1) % len(tokenizer)
        examples.append(batching.Encoded(prompt + answer, [batching.IGNORE] * len(prompt) + answer))
    model.eval()
    loss, accuracy = validation.validate(model, examples, batch_size=4, pad_id=tokenizer.pad_token_id, rank=0, world=1)
    assert accuracy == pytest.approx(4 / 6)
    batch = batching.collate(examples, tokenizer.pad_token_id)
    summed, count = answer_loss_sum(model, batch)
    assert loss == pytest.approx(summed.item() / count, rel=1e-5)
    assert not model.training  # validate leaves the mode it found
    model.train()
    validation.validate(model, examples, 4, tokenizer.pad_token_id, 0, 1)
    assert model.training


def test_the_best_step_is_the_most_accurate_then_the_lowest_loss_and_its_weights_come_back(tiny_base):
    model = models.add_lora(models.load_base(tiny_base), tiny_params().lora)
    best = validation.BestStep(keep_weights=True)
    lora_b = next(p for name, p in model.named_parameters() if "lora_B" in name)
    for step, (loss, accuracy) in enumerate([(0.9, 0.5), (0.7, 0.75), (0.6, 0.75), (0.4, 0.7)], start=1):
        with torch.no_grad():
            lora_b.fill_(float(step))
        best.offer(validation.Validated(step, loss, accuracy), model)
    assert best.best.step == 3  # 0.75 twice: step 3 has the lower loss; step 4's lower loss has less accuracy
    best.restore(model)
    assert torch.all(lora_b == 3.0)


def test_train_keeps_the_adapter_of_its_best_validated_step(tiny_base, tmp_path):
    params = tiny_params(epochs=3, validate_every=1, keep_best=True, validation_fraction=0.05)
    # trained towards "positive", validated on "negative": the validation loss rises, so an early step is best
    records = [{**record, "target": "positive"} for record in fpb_records(12)]
    held_out_records = [{**record, "target": "negative"} for record in fpb_records(4, seed=1)]
    metrics = training.train(params, records, tiny_base, tmp_path / "adapter", tmp_path / "train.json",
                             tmp_path / "live", validation=held_out_records, last_adapter_out=tmp_path / "last")
    curves = {name: logged(tmp_path / "live", name, "val") for name in ("loss", "accuracy")}
    assert len(curves["loss"]) == metrics["steps"] == 9  # 12 examples / batch 4 x 3 epochs, validated every step
    ranked = max(range(9), key=lambda i: (curves["accuracy"][i], -curves["loss"][i]))
    assert ranked < 8  # not the last step, so the two adapters differ
    assert metrics["kept_step"] == ranked + 1 and metrics["val_examples"] == 4
    assert metrics["val_accuracy"] == round(curves["accuracy"][ranked], 4)
    # the saved adapter scores the kept step's validation loss
    tokenizer = models.load_tokenizer(tiny_base)
    held_out, _ = batching.encode(tokenizer, held_out_records, 512, params.model.chat_template)
    for adapter, step in (("adapter", ranked), ("last", -1)):  # the last step's adapter too, where asked for
        adapted = models.load_model(tiny_base, tmp_path / adapter)
        loss, accuracy = validation.validate(adapted, held_out, 4, tokenizer.pad_token_id, 0, 1)
        assert loss == pytest.approx(curves["loss"][step], rel=1e-4) and accuracy == curves["accuracy"][step]


def test_attention_without_cudnn_is_scoped_and_computes_the_same():
    """cuDNN's attention rebuilds a graph for each new shape (bench/RESULTS.md, the H200 profile)."""
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8, generator=generator) for _ in range(3))
    scores = (q @ k.transpose(-1, -2)) / 8 ** 0.5
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    expected = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
    before = torch.backends.cuda.cudnn_sdp_enabled()
    with runtime.attention_without_cudnn():
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
        got = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    torch.testing.assert_close(got, expected)


def test_gradient_accumulation_trains_as_one_larger_batch(tiny_base, tmp_path):
    """FiNER's and XBRL's defaults reach a global batch of 8 by accumulation: 4 x 2 and 2 x 4 give
    the losses and the adapter of 8 x 1 (each step sees all 8 examples, dropout off)."""
    records = fpb_records(8)
    losses, weights = {}, {}
    for batch, accumulation in ((8, 1), (4, 2), (2, 4)):
        params = params_with({"tasks": {"sentiment": ["fpb"]}, "lora": {"rank": 4, "dropout": 0.0},
                              "train": {"lr": 1e-2, "epochs": 3, "batch_size": batch, "grad_accum": accumulation}})
        out = tmp_path / f"{batch}x{accumulation}"
        metrics = training.train(params, records, tiny_base, out / "a", out / "m.json", out / "live")
        assert metrics["steps"] == 3
        losses[batch] = logged(out / "live")
        weights[batch] = load_file(out / "a" / "adapter_model.safetensors")
    assert losses[8][0] > losses[8][-1]  # it trained
    for batch in (4, 2):
        assert losses[batch] == pytest.approx(losses[8], rel=1e-5)
        for name, weight in weights[8].items():
            torch.testing.assert_close(weights[batch][name], weight, rtol=1e-4, atol=1e-6, msg=name)


def test_the_schedule_warms_up_linearly_then_follows_a_cosine_to_zero():
    factor = training.warmup_cosine(total_steps=10, warmup_steps=2)
    by_hand = [1 / 2, 2 / 2, 1.0, 0.5 * (1 + math.cos(math.pi / 8)), 0.5 * (1 + math.cos(math.pi / 4)),
               0.5 * (1 + math.cos(3 * math.pi / 8)), 0.5, 0.5 * (1 + math.cos(5 * math.pi / 8))]
    assert [factor(step) for step in range(8)] == pytest.approx(by_hand)
    assert factor(10) == pytest.approx(0.0) and factor(12) == pytest.approx(0.0)  # stays at zero past the end


def test_the_logged_learning_rate_follows_the_schedule(tiny_base, tmp_path):
    params = tiny_params(epochs=5)  # 16 examples / 4 = 4 steps an epoch, 20 in all, 2 of warm-up
    training.train(params, fpb_records(16), tiny_base, tmp_path / "a", tmp_path / "m.json", tmp_path / "live")
    factor = training.warmup_cosine(20, 2)
    assert logged(tmp_path / "live", "lr") == pytest.approx([1e-2 * factor(step + 1) for step in range(20)])  # the lr after each step


def test_no_example_that_fits_and_too_few_for_a_global_batch_are_named(tiny_base, tmp_path):
    with pytest.raises(FinloraError, match="no training example fits train.max_seq_len = 16"):
        training.train(tiny_params(max_seq_len=16), fpb_records(4), tiny_base, tmp_path / "a", tmp_path / "m.json", None)
    with pytest.raises(FinloraError, match="3 examples are too few for one global batch of 4 x 1 processes x 2 "
                                           "accumulation steps"):
        training.train(tiny_params(grad_accum=2), fpb_records(3), tiny_base, tmp_path / "a", tmp_path / "m.json", None)
    assert not (tmp_path / "a").exists() and not (tmp_path / "m.json").exists()


def test_a_missing_lora_target_names_the_layers_the_model_has(tiny_base):
    lora = params_with({"lora": {"target_modules": ["q_proj", "qkv_proj"]}}).lora
    with pytest.raises(FinloraError, match="lora.target_modules: qkv_proj not found in the model") as raised:
        models.add_lora(models.load_base(tiny_base), lora)
    assert "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in raised.value.hint


class Killed(Exception):
    pass


OPTIMIZER_STEP = training.Recipe._optimizer_step


def interrupted_at(monkeypatch, stop_step: int | None):
    """Make training stop before optimizer step `stop_step`, as a kill would (None: run to the end)."""
    def step(recipe, index):
        if index == stop_step:
            raise Killed
        return OPTIMIZER_STEP(recipe, index)

    monkeypatch.setattr(training.Recipe, "_optimizer_step", step)


def test_a_checkpoint_resumes_only_the_very_same_run(tiny_base, tmp_path, monkeypatch, capsys):
    records = fpb_records(16)

    def run(name, stop_step=None, **train):
        interrupted_at(monkeypatch, stop_step)
        params = tiny_params(epochs=2, checkpoint_every=1, **train)
        out = tmp_path / name
        metrics = training.train(params, records, tiny_base, out / "a", out / "m.json", out / "live", tmp_path / "ckpt")
        return metrics, logged(out / "live")

    _, reference = run("reference")
    with pytest.raises(Killed):
        run("same", stop_step=5)
    capsys.readouterr()
    resumed, losses = run("same")
    assert "resuming from the checkpoint at step 5" in capsys.readouterr().out
    assert resumed["resumed_from_step"] == 5 and losses == pytest.approx(reference, rel=1e-5)
    assert not (tmp_path / "ckpt").exists()  # removed once training finished

    with pytest.raises(Killed):
        run("same", stop_step=5)
    capsys.readouterr()
    other, _ = run("other", lr=5e-3)  # another learning rate: the checkpoint is not this run's
    assert "resuming" not in capsys.readouterr().out
    assert other["resumed_from_step"] == 0 and other["steps"] == 8
