"""The process a training or an evaluation runs in: memory measurement, the attention kernels
it may use, Liger's kernels, sums over the ranks of a run, and the errors that end a training
clearly. What the machine must have before a training starts: finlora.preflight."""

from __future__ import annotations

import contextlib
import os
import resource

import torch

from finlora.config import Params
from finlora.errors import FinloraError


def peak_memory_bytes() -> int:
    """Peak memory of this process: allocated CUDA memory on a GPU, resident memory on a CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def attention_without_cudnn():
    """A context in which scaled-dot-product attention may use any kernel but cuDNN's.

    cuDNN's attention builds a graph for each new tensor shape, hundreds of milliseconds of host
    time, and length-grouped training batches and generation's growing caches change shape at
    almost every call. On an H200 at Llama-3.1-8B's size those builds took 12 s of host time
    against 0.09 s of attention on the device and left the GPU idle most of the step
    (bench/RESULTS.md). Flash and memory-efficient attention start at once for any shape."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


@contextlib.contextmanager
def grouped_heads_under_masks(device: torch.device):
    """A context in which transformers hands a masked attention its grouped key/value heads as
    they are, on a CPU, instead of copying them out to every query head first.

    transformers copies them whenever there is a mask, as it must on CUDA, where a mask and
    grouped heads together send PyTorch to its plain kernel; a CPU's fused kernel takes both. For
    a packed training batch's rest pass (always masked) on FiNER's prompts that copy cost 1.4x
    the step time and 6 GB of peak memory (bench/RESULTS.md). Its switch is an environment
    variable that transformers reads at every call, set here for the context only."""
    switch = "TRANSFORMERS_SDPA_FORCE_GQA"
    if device.type != "cpu":
        yield
        return
    previous = os.environ.get(switch)
    os.environ[switch] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[switch]
        else:
            os.environ[switch] = previous


def reset_peak_memory() -> None:
    """Start a new peak on a GPU (a process's peak resident memory on a CPU cannot be reset)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def apply_liger_kernel(model) -> None:
    """Swap in Liger's fused Triton kernels for the model's RMSNorm, SwiGLU and rotary embeddings
    (for the rest of the process: Liger also patches the model type's module). Its fused
    cross-entropy stays off: the loss here runs the LM head on answer positions only."""
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)


@contextlib.contextmanager
def clear_training_errors(params: Params):
    """Running out of memory, or losing another process of the run (a node killed or gone), ends
    the training with a clear error and no adapter."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError):
        raise FinloraError(
            f"out of memory while training (train.batch_size {params.train.batch_size}, "
            f"quant.bits {params.quant.bits}, train.gradient_checkpointing {params.train.gradient_checkpointing}); "
            "no adapter was written",
            hint="lower train.batch_size (raise train.grad_accum to keep the global batch), "
            "set train.gradient_checkpointing: true, or use quant.bits: 4") from None
    except RuntimeError as error:  # gloo raises a plain RuntimeError when a peer's connection drops
        if not (isinstance(error, torch.distributed.DistBackendError) or any(
                lost in str(error) for lost in ("Connection closed by peer", "Connection reset by peer"))):
            raise
        said = " ".join(str(error).split())
        raise FinloraError(
            f"another process of this training ended or cannot be reached ({said[:160]}); no adapter was written",
            hint="check the other nodes' logs and rerun; with train.checkpoint_every the rerun continues from "
            "the last checkpoint") from None


def all_reduce(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over every rank (unchanged in a single process), on the device they came on.
    NCCL reduces CUDA tensors only, so under NCCL a CPU tensor goes through this rank's GPU."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else values.device
    reduced = values.to(device)
    dist.all_reduce(reduced)
    return reduced.to(values.device)
