#!/usr/bin/env bash
# Create .venv and install lab-ci with every extra and the test tools. Idempotent:
# a second run only checks that everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# llama-cpp-python compiles llama.cpp for this CPU (-march=native). On Xeons with AMX
# (Sapphire Rapids and later) that build sends quantized matrix products to ggml's AMX
# kernels, which crash the process on some of those machines (a general protection
# fault in ggml_backend_amx_mul_mat at the first decode; llama.cpp issue 20824; seen on
# these machines and in CI). Build it without AMX: AVX-512, AVX2 and repacking stay.
LLAMA_CFLAGS=""
if [ "$(uname -m)" = "x86_64" ]; then
    LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
# Two stamps, so that a change to pyproject.toml's tool settings rebuilds nothing, and a
# change of dependencies reinstalls them without recompiling llama.cpp.
llama=$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml | sed 's/\[server\]//' || true)
if [ -z "$llama" ]; then
    echo "scripts/setup.sh: pyproject.toml pins no 'llama-cpp-python[server]==X.Y.Z'" >&2
    exit 1
fi
llama_stamp=.venv/.lab-ci-llama
llama_want=$(echo "$llama; cflags: $LLAMA_CFLAGS" | sha256sum | cut -c1-16)
deps_stamp=.venv/.lab-ci-installed
deps_want=$("$PY" -c 'import json, sys, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(json.dumps([p.get("dependencies"), p.get("optional-dependencies"), p.get("scripts")], sort_keys=True))' | sha256sum | cut -c1-16)
if [ "$(cat "$llama_stamp" 2>/dev/null)" != "$llama_want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # no wheel cache: a cached build of the same version may have other flags
    CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" \
        .venv/bin/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$llama"
    echo "$llama_want" > "$llama_stamp"
    rm -f "$deps_stamp"
fi
if [ "$(cat "$deps_stamp" 2>/dev/null)" != "$deps_want" ]; then
    # torch==2.13.0 is pinned in the train extra: a CPU wheel of that version is local.
    .venv/bin/python -m pip install --quiet -e '.[all,test]'
    echo "$deps_want" > "$deps_stamp"
fi
