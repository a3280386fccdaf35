#!/usr/bin/env bash
# Pack what bench/gpu_train.sh needs on a GPU machine that has torch but no network: the tested
# versions of the packages it imports beyond the machine's own (as wheels for its Python,
# installed into one folder and compressed) and the tokenizer's files from models/base.
#
#     bash bench/gpu_bundle.sh [OUT [PYTHON_VERSION [CUDA_MAJOR]]]    # default .gpu 3.12 13
#
# Then, on the GPU machine, from a copy of this repository with OUT in it:
#
#     mkdir -p /tmp/site && tar -C /tmp/site -xJf .gpu/site.tar.xz
#     PYTHONPATH=/tmp/site:$PWD/src PYTHON=python3 bash bench/gpu_train.sh .gpu/tokenizer
#
# The package list is what the H200 image lent in November 2026 lacked (it brought torch 2.11,
# triton, numpy, accelerate, tokenizers, safetensors and huggingface_hub). Versions are those of
# .venv (liger-kernel: pyproject's gpu extra). bitsandbytes keeps only its CPU library and those
# for CUDA CUDA_MAJOR.x (not ROCm's or XPU's).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu}
python_version=${2:-3.12}
cuda_major=${3:-13}
python=.venv/bin/python
packages=(transformers peft bitsandbytes liger-kernel hjson pydantic pydantic-core annotated-types
          typing-inspection typing-extensions regex)

pins=$("$python" - "${packages[@]}" <<'EOF'
import importlib.metadata, re, sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
pinned = dict(re.match(r"([\w.-]+)==(\S+)", spec).groups() for specs in extras.values()
              for spec in specs if "==" in spec)
for name in sys.argv[1:]:
    try:
        print(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
        print(f"{name}=={pinned[name]}")
EOF
)
# pip takes only the manylinux tags named: these two are the ones the wheels here carry (pydantic-core
# and regex 2.17, bitsandbytes 2.24), and wheels with them ran on the H200 image.
platforms="--platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64"
deepspeed=$("$python" -c "import importlib.metadata as m; print(m.version('deepspeed'))")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "wheels for Python $python_version: deepspeed==$deepspeed" $pins
# DeepSpeed publishes only a source archive; built without its ops it is a pure-Python wheel.
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/wheels" "deepspeed==$deepspeed"
# shellcheck disable=SC2086
"$python" -m pip install --quiet --no-deps --only-binary=:all: --target "$work/site" \
    --python-version "$python_version" --implementation cp $platforms $pins "$work"/wheels/deepspeed-*.whl
find "$work/site/bitsandbytes" -name 'libbitsandbytes_*' ! -name libbitsandbytes_cpu.so \
    ! -name "libbitsandbytes_cuda${cuda_major}*" -delete
find "$work/site" -name __pycache__ -prune -exec rm -rf {} +

mkdir -p "$out"
tar -C "$work/site" -cf - . | xz -T0 -6 > "$out/site.tar.xz.tmp"
mv "$out/site.tar.xz.tmp" "$out/site.tar.xz"
rm -rf "$out/tokenizer"
mkdir "$out/tokenizer"
find models/base -maxdepth 1 -type f ! -name '*.safetensors' -exec cp {} "$out/tokenizer/" \;
du -sh "$out/site.tar.xz" "$out/tokenizer"
