#!/usr/bin/env bash
# One command on a machine with one CUDA GPU and a fresh clone: install the CUDA build of torch and the engine
# into their own venv, then run bench/gpu_check.py (grasp-generator training in bf16, sampling, classifier and
# affordance-map inference) and print where its JSON is.
#
#   bash bench/gpu_check.sh [--steps N] [--out DIR]
#   bash bench/gpu_check.sh --device cpu --tiny      # dry run in the existing venv (PYTHON, default .venv)
#
# TORCH_INDEX picks the CUDA wheel index (default cu128); GPU_VENV the venv folder (default .venv-gpu).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ " $* " == *" --device cpu "* ]]; then
  python="${PYTHON:-.venv/bin/python}"
  [[ -x "$python" ]] || { echo "error: $python not found: run \`make setup\` first, or set PYTHON" >&2; exit 2; }
else
  venv="${GPU_VENV:-.venv-gpu}"
  index="${TORCH_INDEX:-https://download.pytorch.org/whl/cu128}"
  echo "setting up $venv: torch 2.13.0 from $index and the engine (nothing to do when it is up to date) ..."
  make setup VENV="$venv" TORCH="torch==2.13.0 --index-url $index"
  python="$venv/bin/python"
fi
start=$(date +%s)
"$python" -m bench.gpu_check "$@"
echo "gpu check took $(( $(date +%s) - start )) s after the install"
