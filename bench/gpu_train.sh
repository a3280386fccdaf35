#!/usr/bin/env bash
# Training benchmark at Llama-3.1-8B's shape on one GPU (random weights, no download): finlora's
# train step, with and without Liger's fused kernels, against HF Trainer + peft, batch 4 x 512
# tokens, LoRA r8 on q/k/v, as in the paper's Table 6. The model (16 GB) is built once under the
# temporary directory. Liger needs `pip install liger-kernel==0.8.5`.
#
#     bash bench/gpu_train.sh [TOKENIZER_FOLDER [SETTING ...]]   # default models/base, every setting
#
# SETTING: 4bit-gc 8bit-gc 16bit-gc 4bit (the default four; gc: gradient checkpointing; rank 8 as
# in Table 6), and 4bit-r4-gc (the paper's 4-bit rank). The four take about 10 minutes on an
# H200; name two at a time where one command may run 10 minutes at most.
# PYTHON=python3 picks the interpreter.
set -u
tokenizer=${1:-models/base}
shift $(( $# > 0 ? 1 : 0 ))
run() {
    echo "== $*"
    SECONDS=0
    "${PYTHON:-python}" bench/train_throughput.py --shape llama-3.1-8b --base "$tokenizer" \
        --batch-size 4 --seq-len 512 --steps 24 "$@"
    echo "($SECONDS s)"
}
settings=("$@")
[ ${#settings[@]} -eq 0 ] && settings=(4bit-gc 8bit-gc 16bit-gc 4bit)
for name in "${settings[@]}"; do
    case $name in
        4bit-gc | 8bit-gc | 16bit-gc | 4bit | 4bit-r4-gc) ;;
        *) echo "unknown setting $name; valid: 4bit-gc 8bit-gc 16bit-gc 4bit 4bit-r4-gc" >&2; exit 2 ;;
    esac
done
for name in "${settings[@]}"; do
    case $name in
        4bit-gc) run --bits 4 --rank 8 --gradient-checkpointing --liger ;;
        8bit-gc) run --bits 8 --rank 8 --gradient-checkpointing ;;
        16bit-gc) run --bits 16 --rank 8 --gradient-checkpointing --liger ;;
        4bit) run --bits 4 --rank 8 ;;
        4bit-r4-gc) run --bits 4 --rank 4 --gradient-checkpointing ;;
    esac
done
