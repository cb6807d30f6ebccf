#!/usr/bin/env bash
# `make demo`: fetch a small real English corpus, train the debug model on it
# with a live progress line, evaluate, sample text and write the HTML report.
# Uses the GPU when there is one (train.device = "auto").
set -euo pipefail
build=${1:-build}
lumina="$build/lumina"
run=experiments/demo

bash scripts/fetch_corpus.sh data/brown
echo
echo "== train (configs/demo.toml) =="
rm -rf "$run"
"$lumina" train --config configs/demo.toml
echo
echo "== evaluate on the held-out samples =="
"$lumina" eval --checkpoint "$run" --data data/brown/valid.txt
echo
echo "== sample =="
"$lumina" generate --checkpoint "$run" --prompt "The jury said" --max-new-tokens 400 --temperature 0.8 --top-k 40 --seed 1
echo
echo "report: $run/report.html"
