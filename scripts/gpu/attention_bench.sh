#!/usr/bin/env bash
# On a GPU machine: lumina's attention parity tests, its benchmark, and PyTorch's
# SDPA reference (cuDNN / FlashAttention-2 / efficient backends) in one run, so
# the TFLOP/s figures come from the same machine and the same minute.
#
#   scripts/gpu/attention_bench.sh BUNDLE OUT [REFERENCE_SCRIPT]
#
# BUNDLE: a folder made by ../shared/tools/bundle-libs.sh with bin/lumina_gpu_tests
# and bin/lumina_attention_bench; OUT: where the logs go; REFERENCE_SCRIPT:
# attn_gemm_ref.py (default ../shared/reference/attn_gemm_ref.py). Set
# LUMINA_CUDNN_LIB to a folder holding another libcudnn.so.9 to run against it.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUNDLE OUT [REFERENCE_SCRIPT]" >&2; exit 2; }
bundle=$1
out=$2
reference=${3:-../shared/reference/attn_gemm_ref.py}
mkdir -p "$out"
export LD_LIBRARY_PATH="${LUMINA_CUDNN_LIB:+$LUMINA_CUDNN_LIB:}$bundle/lib:${LD_LIBRARY_PATH:-}"
status=0
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/attention_device.txt"
"$bundle/bin/lumina_gpu_tests" --gtest_filter='CudaAttention*' 2>&1 | tee "$out/attention_tests.log" || status=1
"$bundle/bin/lumina_attention_bench" 2>&1 | tee "$out/attention_bench.jsonl" || status=1
PYTHONUNBUFFERED=1 python3 "$reference" 2>&1 | grep '"attn"' | tee "$out/attention_torch.jsonl" || status=1
exit $status
