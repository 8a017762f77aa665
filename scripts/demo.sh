#!/usr/bin/env bash
# Set up everything on a fresh machine (Python 3.11 and git), then run the main job on
# the embedded example taxonomy: build the tiny teacher, check every leaf, and render a
# real preview with the llama.cpp runtime. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p .cache
python scripts/build_tiny_models.py --out .cache/models
python scripts/make_example_docs.py --out .cache/example-documents.git
echo "== lab-ci check --taxonomy taxonomy"
lab-ci check --taxonomy taxonomy
# --precheck-model: the "current model" whose answers to the seed questions are shown
# beside the contributor's; in a real deployment, the latest release's GGUF.
echo "== lab-ci preview --taxonomy taxonomy (tiny teacher, llama.cpp)"
lab-ci preview --taxonomy taxonomy \
    --teacher .cache/models/teacher.gguf \
    --document-mirror "https://github.com/lab-ci/example-documents.git=$PWD/.cache/example-documents.git" \
    --precheck-model .cache/models/teacher.gguf \
    --samples 3 --output .cache/preview.md
echo "== preview written to .cache/preview.md ($(wc -c < .cache/preview.md) bytes)"
