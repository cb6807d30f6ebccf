#!/usr/bin/env bash
# On a GPU machine: lumina's gpu-labelled tests from a bundle, then (with
# LUMINA_SANITIZE=1) the CUDA kernel tests again under compute-sanitizer's
# memcheck and racecheck. Logs go to OUT; the exit status is non-zero when any
# run fails.
#
#   scripts/gpu/run_gpu_tests.sh BUNDLE OUT [GTEST_FILTER]
#
# BUNDLE: a folder made by ../shared/tools/bundle-libs.sh holding
# bin/lumina_gpu_tests. The bundle leaves out the CUDA libraries (runtime,
# cuBLASLt, cuDNN); when the loader cannot find one, the folders of the
# machine's own copies (CUDA toolkit, Python wheels) are added to LD_LIBRARY_PATH.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUNDLE OUT [GTEST_FILTER]" >&2; exit 2; }
bundle=$1
out=$2
filter=${3:-*}
tests="$bundle/bin/lumina_gpu_tests"
mkdir -p "$out"
export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH:-}"
for lib in $(ldd "$tests" | awk '/not found/ {print $1}'); do
  found=$(find /usr/local/cuda/ /usr/lib /opt -name "$lib" 2>/dev/null | head -n 1)
  if [ -n "$found" ]; then
    echo "using $found"
    export LD_LIBRARY_PATH="$(dirname "$found"):$LD_LIBRARY_PATH"
  else
    echo "missing $lib: the tests cannot start" >&2
  fi
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
status=0
"$tests" --gtest_filter="$filter" >"$out/gpu_tests.log" 2>&1 || status=1
grep -E -A4 'Failure|error:' "$out/gpu_tests.log" | head -n 150
grep -E '^\[  (FAILED|PASSED|SKIPPED) ' "$out/gpu_tests.log"
if [ "${LUMINA_SANITIZE:-0}" = 1 ]; then
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  kernels='Cuda*:-CudaAttention*'  # the cuDNN attention graphs are slow under the sanitizer
  for tool in memcheck racecheck; do
    "$sanitizer" --tool "$tool" --error-exitcode 3 "$tests" --gtest_filter="$kernels" >"$out/$tool.log" 2>&1 || status=1
    echo "== $tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool.log" | tail -n 1)"
  done
fi
exit $status
