#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the same source and with the same flags that
# scripts/setup.sh gives llama-cpp-python, and cache it under .cache/llama-server/.
#
#   bash scripts/build_llama_server.sh            # build (or reuse) and print the binary's path
#   bash scripts/build_llama_server.sh --print    # print the path if it is built, else exit 1
#
# Source: the vendored llama.cpp tree of the llama-cpp-python sdist that pyproject.toml
# pins (pip download --no-binary :all: --no-deps llama-cpp-python==X.Y.Z). Nothing
# prebuilt is downloaded; the Web UI is not embedded (no npm, no download: the
# OpenAI-compatible API is all lab-ci uses). Flags: Release, -march=native (GGML_NATIVE,
# as a pip build of llama-cpp-python), and on x86_64 without ggml's AMX kernels, as
# setup.sh builds llama-cpp-python (they crash at the first decode on some Xeons;
# llama.cpp issue 20824). Static libraries, so the binary does not need the wheel's.
#
# Cache: .cache/llama-server/bin/llama-server plus a stamp of the pin and the flags (and
# the sdist, so a rebuild downloads nothing); a second run with the same pin and flags
# only checks the stamp and that the binary starts. About 10 minutes on 2 cores. Environment: LLAMA_SERVER_JOBS (parallel compile
# jobs, default: the number of CPUs), LLAMA_SERVER_CMAKE_ARGS (extra CMake arguments,
# part of the stamp; e.g. "-DGGML_CUDA=ON" for a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=.cache/llama-server
bin=$root/bin/llama-server
stamp=$root/stamp

llama=$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml | sed 's/\[server\]//' || true)
if [ -z "$llama" ]; then
    echo "scripts/build_llama_server.sh: pyproject.toml pins no 'llama-cpp-python[server]==X.Y.Z'" >&2
    exit 1
fi
version=${llama#*==}
# The same CPU flags as scripts/setup.sh (keep the two in step).
LLAMA_CFLAGS=""
if [ "$(uname -m)" = "x86_64" ]; then
    LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
extra=${LLAMA_SERVER_CMAKE_ARGS:-}
want=$(echo "$llama; cflags: $LLAMA_CFLAGS; cmake: $extra" | sha256sum | cut -c1-16)

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && "$bin" --version >/dev/null 2>&1; then
    echo "$PWD/$bin"
    exit 0
fi
if [ "${1:-}" = "--print" ]; then
    echo "scripts/build_llama_server.sh: llama-server is not built (run: bash scripts/build_llama_server.sh)" >&2
    exit 1
fi

PY=.venv/bin/python
[ -x "$PY" ] || PY=${PYTHON:-python3}
src=$root/src
mkdir -p "$src"
sdist=$src/llama_cpp_python-$version.tar.gz
if [ ! -f "$sdist" ]; then
    echo "llama-server: downloading the $llama sdist from PyPI" >&2
    "$PY" -m pip download --quiet --no-binary :all: --no-deps "$llama" -d "$src"
fi
tree=$src/llama_cpp_python-$version
if [ ! -d "$tree/vendor/llama.cpp" ]; then
    rm -rf "$tree"
    tar -xzf "$sdist" -C "$src" "llama_cpp_python-$version/vendor/llama.cpp"
fi

generator=()
if command -v ninja >/dev/null 2>&1; then
    generator=(-G Ninja)
fi
build=$root/build
# shellcheck disable=SC2086  # $extra is a list of CMake arguments
CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" cmake -S "$tree/vendor/llama.cpp" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    $extra >"$root/cmake-configure.log" 2>&1 || {
    echo "llama-server: cmake configure failed; see $root/cmake-configure.log" >&2
    tail -20 "$root/cmake-configure.log" >&2
    exit 1
}
jobs=${LLAMA_SERVER_JOBS:-$(nproc 2>/dev/null || echo 2)}
echo "llama-server: compiling with $jobs jobs (about 10 minutes on 2 cores)" >&2
cmake --build "$build" --target llama-server -j "$jobs" >"$root/cmake-build.log" 2>&1 || {
    echo "llama-server: build failed; see $root/cmake-build.log" >&2
    tail -20 "$root/cmake-build.log" >&2
    exit 1
}
mkdir -p "$root/bin"
cp "$build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
"$bin" --version >/dev/null 2>&1 || {
    echo "llama-server: the built binary does not start: $bin" >&2
    exit 1
}
echo "$want" >"$stamp"
# the sdist stays (a rebuild needs no download); the unpacked tree and objects go (~250 MB)
rm -rf "$tree" "$build"
echo "$PWD/$bin"
