# Source on a GPU machine: puts a bundle's libraries (BUNDLE, default .bundle)
# on LD_LIBRARY_PATH, then the folders of the machine's own CUDA, cuBLASLt and
# cuDNN libraries that the loader cannot find for the bundle's binaries.
bundle=${BUNDLE:-.bundle}
export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH:-}"
for bin in "$bundle"/bin/*; do
  for lib in $(ldd "$bin" | awk '/not found/ {print $1}'); do
    found=$(find /usr/local/cuda/ /usr/lib /opt -name "$lib" 2>/dev/null | head -n 1)
    [ -n "$found" ] && export LD_LIBRARY_PATH="$(dirname "$found"):$LD_LIBRARY_PATH"
  done
done
