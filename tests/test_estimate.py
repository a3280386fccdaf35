"""`finlora estimate`: the memory formulas on a tiny shape, counted by hand, and the estimates
against the peaks measured on an H200 at the Llama-3.1-8B shape (bench/RESULTS.md)."""

import pytest

from conftest import REPO
from finlora import estimate
from finlora.errors import FinloraError
from finlora.estimate import GB, Setting, Shape

LLAMA_8B = Shape.from_config(estimate.read_config(REPO / "tests" / "fixtures" / "configs" / "llama-3.1-8b.json"))
QKV = ["q_proj", "k_proj", "v_proj"]
# H 8, I 16, 2 layers, 2 heads of 4 with 1 KV head (KV width 4), vocabulary 10, tied embeddings
TINY = Shape(hidden=8, intermediate=16, layers=2, heads=2, kv_heads=1, vocab=10, tied_embeddings=True)
# one layer's linears: q 8x8 + k 8x4 + v 8x4 + o 8x8 + gate 8x16 + up 8x16 + down 16x8 = 576 weights
TINY_LINEAR = 2 * 576
TINY_OTHER = 10 * 8 + (2 * 2 + 1) * 8  # tied embedding, 5 norms


def test_weights_by_dtype_counted_by_hand():
    assert estimate.total(estimate.weights(TINY, 16, 2)) == 2 * (TINY_LINEAR + TINY_OTHER)
    int8 = estimate.weights(TINY, 8, 2)
    assert int8["linear layers (int8)"] == TINY_LINEAR
    assert int8["int8 row scales"] == 4 * 2 * (8 + 4 + 4 + 8 + 16 + 16 + 8)
    nf4 = estimate.weights(TINY, 4, 2)
    assert nf4["linear layers (NF4)"] == TINY_LINEAR / 2
    assert nf4["NF4 constants"] == pytest.approx(TINY_LINEAR * (1 / 64 + 4 / (64 * 256)))


def test_adapter_gradients_optimizer_and_zero_split():
    # r2 on q (8 -> 8) and v (8 -> 4): 2 * (8 + 8) + 2 * (8 + 4) = 56 per layer, 112 in all
    assert estimate.adapter_params(TINY, 2, ["q_proj", "v_proj"]) == 112
    assert estimate.adapter_params(TINY, 1, ["all-linear"]) == 2 * (16 + 12 + 12 + 16 + 24 + 24 + 24)
    one = estimate.training(TINY, Setting(16, 2, ["q_proj", "v_proj"], 1, 4, False))
    assert one["gradients (float32)"] == 112 * 4 and one["optimizer states (AdamW, float32)"] == 2 * 112 * 4
    zero2 = estimate.training(TINY, Setting(16, 2, ["q_proj", "v_proj"], 1, 4, False, zero_stage=2, processes=4))
    assert zero2["gradients (float32)"] == 112 and zero2["optimizer states (AdamW, float32)"] == 2 * 112


def test_activations_with_and_without_checkpointing_counted_by_hand():
    # per token per layer: 8H + 3I = 112, LoRA on q: 1.5 * 8 + r(2) = 14, NF4 inputs 3H + I = 40
    setting = Setting(4, 2, ["q_proj"], batch_size=3, seq_len=5, gradient_checkpointing=False)
    plain = estimate.training(TINY, setting)["activations (no checkpointing)"]
    assert plain == 15 * 2 * (112 + 14 + 40) * 2  # tokens * layers * values * bf16 bytes
    checkpointed = estimate.training(TINY, Setting(4, 2, ["q_proj"], 3, 5, True))["activations (with checkpointing)"]
    assert checkpointed == 15 * (2 * 8 + (112 + 14 + 40)) * 2  # each layer's input, one layer recomputed
    assert estimate.training(TINY, setting)["logits on answer positions (float32, and gradient)"] == 2 * 3 * 8 * 10 * 4


def test_inference_kv_cache_counted_by_hand():
    parts = estimate.inference(TINY, 16, 2, ["q_proj"], batch_size=2, prompt_tokens=6, new_tokens=4)
    assert parts["KV cache"] == 2 * 2 * 4 * (2 * 10) * 2  # k and v, layers, KV width, tokens, bytes
    assert parts["logits (float32)"] == 2 * 10 * 4


@pytest.mark.parametrize("bits, checkpointing, measured_gb", [
    (4, True, 7.00),    # finlora, 4-bit NF4, gradient checkpointing
    (8, True, 10.43),   # finlora, int8 (its layers keep none of their inputs), gradient checkpointing
    (16, True, 17.27),  # finlora, bf16 weights, gradient checkpointing
    (4, False, 19.80),  # finlora, 4-bit NF4, no checkpointing
])
def test_within_15_percent_of_the_measured_8b_peaks(bits, checkpointing, measured_gb):
    """H200, batch 4 x 512 tokens, r8 on q/k/v (bench/RESULTS.md, 2026-11-30)."""
    estimated = estimate.total(estimate.training(LLAMA_8B, Setting(bits, 8, QKV, 4, 512, checkpointing))) / GB
    assert abs(estimated / measured_gb - 1) <= 0.15, estimated


def test_a_setting_too_big_is_refused_naming_the_estimate_and_a_batch_that_fits():
    setting = Setting(16, 8, QKV, 16, 512, True)
    need = estimate.total(estimate.training(LLAMA_8B, setting))
    with pytest.raises(FinloraError, match=r"needs about 20\.0 GB per process .* more than the 17\.0 GB of GPU") as error:
        estimate.refuse_if_too_big(LLAMA_8B, setting, 17.0 * GB, "GPU")
    batch = estimate.largest_batch(LLAMA_8B, setting, 17.0 * GB)
    assert f"train.batch_size {batch} fits" in error.value.hint and 0 < batch < 16
    from dataclasses import replace

    assert estimate.total(estimate.training(LLAMA_8B, replace(setting, batch_size=batch))) <= 17.0 * GB
    assert estimate.total(estimate.training(LLAMA_8B, replace(setting, batch_size=batch + 1))) > 17.0 * GB
    estimate.refuse_if_too_big(LLAMA_8B, setting, need, "GPU")  # exactly enough: no error


def test_a_config_without_the_needed_fields_is_named():
    with pytest.raises(FinloraError, match="config.json has no intermediate_size"):
        Shape.from_config({"hidden_size": 8})
