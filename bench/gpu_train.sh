#!/usr/bin/env bash
# Training benchmark at Llama-3.1-8B's shape on one GPU (random weights, no download): finlora's
# train step, with and without Liger's fused kernels, against HF Trainer + peft, batch 4 x 512
# tokens, LoRA r8 on q/k/v, as in the paper's Table 6. The model (16 GB) is built once under the
# temporary directory. Liger needs `pip install liger-kernel==0.8.5`.
#
#     bash bench/gpu_train.sh [TOKENIZER_FOLDER]     # default models/base; PYTHON=python3 to pick one
set -u
tokenizer=${1:-models/base}
run() {
    echo "== $*"
    SECONDS=0
    "${PYTHON:-python}" bench/train_throughput.py --shape llama-3.1-8b --base "$tokenizer" \
        --batch-size 4 --seq-len 512 --steps 24 "$@"
    echo "($SECONDS s)"
}
run --bits 4 --rank 8 --gradient-checkpointing --liger
run --bits 8 --rank 8 --gradient-checkpointing
run --bits 16 --rank 8 --gradient-checkpointing --liger
run --bits 4 --rank 8
