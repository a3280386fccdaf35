"""finlora.models: what a base model becomes when it is loaded (quantised layers at 4 and 8 bits),
the conversion of the embedded model, and a Hub model that cannot be had."""

import importlib.util
import json

import pytest
import torch

from finlora import models
from finlora.errors import FinloraError


def linear_types(model) -> dict[str, str]:
    """The class of each linear layer of the first decoder layer, and of the LM head."""
    layers = {name: type(module).__name__ for name, module in model.named_modules()
              if name.startswith("model.layers.0.") and "proj" in name.rsplit(".", 1)[-1]}
    return {**{name.rsplit(".", 1)[-1]: kind for name, kind in layers.items()}, "lm_head": type(model.lm_head).__name__}


@pytest.mark.parametrize("bits, layer, weight_dtype", [(4, "Linear4bit", torch.uint8), (8, "Linear8bitLt", torch.int8),
                                                       (16, "Linear", torch.float32)])
def test_load_base_quantises_every_decoder_linear_layer_and_leaves_the_head(tiny_base, bits, layer, weight_dtype):
    model = models.load_base(tiny_base, bits)
    kinds = linear_types(model)
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert {kinds[name] for name in projections} == {layer} and kinds["lm_head"] == "Linear"
    assert model.model.layers[1].mlp.down_proj.weight.dtype == weight_dtype
    assert model.lm_head.weight.dtype == torch.float32
    packed = model.model.layers[0].self_attn.q_proj.weight.numel()
    assert packed == {4: 32 * 32 // 2, 8: 32 * 32, 16: 32 * 32}[bits]  # NF4 packs two weights a byte


def test_a_hub_model_that_cannot_be_downloaded_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FinloraError, match=r"model.base = finlora-tests/no-such-model: cannot download from the "
                                           r"Hugging Face Hub \(\w+\)") as raised:
        models.materialize_base("finlora-tests/no-such-model", tmp_path / "base")
    assert "HF_TOKEN" in raised.value.hint
    assert not (tmp_path / "base" / models.BASE_INFO).exists()


@pytest.mark.slow
def test_the_embedded_model_converts_to_the_weights_its_gguf_file_holds(tmp_path):
    """SmolLM2-135M, dequantised from its GGUF file by transformers, against the same tensors
    dequantised here with the gguf package's own reader."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.torch import load_file

    out = tmp_path / "base"
    out.mkdir()
    info = models.materialize_base("smollm2-135m", out)
    assert info == {"base": "smollm2-135m", "kind": "builtin", "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "trust_remote_code": False}
    config = json.loads((out / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)
    assert "quantization_config" not in config  # a plain model that trains and saves
    weights = load_file(out / "model.safetensors")
    package, filename = models.BUILTIN_GGUF["smollm2-135m"]
    reader = GGUFReader(f"{importlib.util.find_spec(package).submodule_search_locations[0]}/{filename}")
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    for gguf_name, name in (("token_embd.weight", "model.embed_tokens.weight"),
                            ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
                            ("blk.29.attn_v.weight", "model.layers.29.self_attn.v_proj.weight"),
                            ("output_norm.weight", "model.norm.weight")):
        tensor = tensors[gguf_name]
        expected = torch.from_numpy(dequantize(tensor.data, tensor.tensor_type).copy()).float()
        torch.testing.assert_close(weights[name], expected.reshape(weights[name].shape), msg=name)
    tokenizer = models.load_tokenizer(out)
    assert tokenizer.decode(tokenizer("Net sales rose 12%.")["input_ids"]) == "Net sales rose 12%."
