// Token embedding, forward and backward.
//   forward:  out (N, C) = table (V, C) [tokens (N)]; one block per row, 16-byte packs.
//   backward: dtable (V, C) f32 += scatter of dout (N, C) by tokens, deterministic
//             without float atomics:
//     1. keys[n] = token << 32 | n (N <= 2^31), padded to a power of two with
//        all-ones keys (also used for out-of-range tokens, which are reported);
//     2. bitonic sort of the keys: whole tiles of kSortTile keys in shared memory,
//        the strides >= kSortTile of the larger merges in global memory;
//     3. after the sort the positions of one token form a run in increasing n:
//        the block that meets the first key of a run sums dout over the run in
//        that order and adds the sum to dtable[token].
//   Out-of-range token ids set kTokenOutOfRange (thrown at the next sync); the
//   forward writes zeros for them and the backward skips them.
#include "lumina/backend/cuda/cuda_backend_impl.h"
#include "lumina/backend/cuda/cuda_utils.cuh"

namespace lumina {

namespace {

using namespace cuda;

constexpr int kSortTile = 2048;  // keys per shared-memory tile: 1024 threads x 2
constexpr uint64_t kNoKey = ~uint64_t{0};

template <class T, int VEC>
__global__ void embedding_forward_kernel(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t vocab,
                                         int64_t packs_per_row, unsigned* errors) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int32_t token = tokens[row];
    T* dst = out + row * packs_per_row * VEC;
    if (token < 0 || token >= vocab) {
      if (threadIdx.x == 0) atomicOr(errors, kTokenOutOfRange);
      Pack<T, VEC> zero;
      for (int k = 0; k < VEC; ++k) zero.v[k] = from_f32<T>(0.0f);
      for (int64_t p = threadIdx.x; p < packs_per_row; p += blockDim.x) store_pack<VEC>(dst + p * VEC, zero);
      continue;
    }
    const T* src = table + token * packs_per_row * VEC;
    for (int64_t p = threadIdx.x; p < packs_per_row; p += blockDim.x)
      store_pack<VEC>(dst + p * VEC, load_pack<VEC>(src + p * VEC));
  }
}

// keys (padded) = token << 32 | n for valid tokens, kNoKey for padding and bad tokens.
__global__ void embedding_keys_kernel(uint64_t* keys, const int32_t* tokens, int64_t rows, int64_t padded,
                                      int64_t vocab, unsigned* errors) {
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; n < padded;
       n += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t key = kNoKey;
    if (n < rows) {
      const int32_t token = tokens[n];
      if (token >= 0 && token < vocab) key = (static_cast<uint64_t>(token) << 32) | static_cast<uint64_t>(n);
      else atomicOr(errors, kTokenOutOfRange);
    }
    keys[n] = key;
  }
}

// Orders a pair of the bitonic network: ascending when the sequence's bit k of i is 0.
__device__ __forceinline__ void compare_exchange(uint64_t& a, uint64_t& b, bool ascending) {
  if ((a > b) == ascending) {
    const uint64_t t = a;
    a = b;
    b = t;
  }
}

// Lower index of compare pair t for stride j (a power of two): t with a 0 bit inserted at log2(j).
__device__ __forceinline__ int64_t pair_index(int64_t t, int64_t j) { return 2 * t - (t & (j - 1)); }

// One tile of `tile` keys per block, tile / 2 threads. merge_k == 0: sorts each tile
// (stages k = 2 .. tile); otherwise runs the strides j < tile of stage merge_k.
__global__ void bitonic_tile_kernel(uint64_t* keys, int tile, int64_t merge_k) {
  extern __shared__ uint64_t tile_keys[];  // (tile)
  const int64_t base = static_cast<int64_t>(blockIdx.x) * tile;
  for (int i = static_cast<int>(threadIdx.x); i < tile; i += static_cast<int>(blockDim.x))
    tile_keys[i] = keys[base + i];
  __syncthreads();
  const int64_t k_first = merge_k ? merge_k : 2, k_last = merge_k ? merge_k : tile;
  for (int64_t k = k_first; k <= k_last; k <<= 1) {
    for (int64_t j = (merge_k ? tile : k) >> 1; j > 0; j >>= 1) {
      const int64_t i = pair_index(threadIdx.x, j);
      compare_exchange(tile_keys[i], tile_keys[i + j], ((base + i) & k) == 0);
      __syncthreads();
    }
  }
  for (int i = static_cast<int>(threadIdx.x); i < tile; i += static_cast<int>(blockDim.x))
    keys[base + i] = tile_keys[i];
}

// One stride j >= tile of stage k, over all padded / 2 pairs.
__global__ void bitonic_global_kernel(uint64_t* keys, int64_t padded, int64_t k, int64_t j) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < padded / 2;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = pair_index(t, j);
    uint64_t a = keys[i], b = keys[i + j];
    compare_exchange(a, b, (i & k) == 0);
    keys[i] = a;
    keys[i + j] = b;
  }
}

// dtable[token] += sum of dout rows over the token's run of sorted keys, in key order.
template <class T>
__global__ void embedding_backward_kernel(float* dtable, const uint64_t* keys, const T* dout, int64_t rows,
                                          int64_t channels) {
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const uint64_t key = keys[i];
    if (key == kNoKey) return;  // sorted: only invalid keys follow
    const uint64_t token = key >> 32;
    if (i > 0 && (keys[i - 1] >> 32) == token) continue;  // not the first key of its run
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      float acc = 0.0f;
      for (int64_t r = i; r < rows && (keys[r] >> 32) == token; ++r)
        acc += to_f32(dout[static_cast<int64_t>(keys[r] & 0xffffffffu) * channels + c]);
      dtable[static_cast<int64_t>(token) * channels + c] += acc;
    }
  }
}

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

void CudaBackend::embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) {
  const char* op = "embedding_forward";
  expect_device(out, op, "out");
  expect_device(tokens, op, "tokens");
  expect_device(table, op, "table");
  expect_dtype(tokens, DType::i32, op, "tokens");
  LUMINA_CHECK(out.dtype == table.dtype, "{}: out is {} but table is {}", op, dtype_name(out.dtype),
               dtype_name(table.dtype));
  LUMINA_CHECK(table.rank() == 2, "{}: table must be (V, C), got {}", op, table.shape.str());
  const int64_t vocab = table.dim(0), channels = table.dim(1), rows = tokens.numel();
  check_shape(out.flatten_2d(), Shape{rows, channels}, "embedding_forward: out (flattened, as (N, C))");
  if (rows == 0 || channels == 0) return;
  NvtxRange range(op);
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto* o = static_cast<T*>(out.data);
    const auto* t = static_cast<const T*>(table.data);
    const auto* ids = static_cast<const int32_t*>(tokens.data);
    constexpr int kVec = kPack16<T>;
    const unsigned blocks = grid_blocks(rows, 1, 65535);
    if (channels % kVec == 0 && aligned_16(o) && aligned_16(t)) {
      const int threads = row_threads(channels / kVec, 256);
      embedding_forward_kernel<T, kVec><<<blocks, threads, 0, stream_>>>(o, ids, t, rows, vocab, channels / kVec,
                                                                        device_errors_);
    } else {
      const int threads = row_threads(channels, 256);
      embedding_forward_kernel<T, 1><<<blocks, threads, 0, stream_>>>(o, ids, t, rows, vocab, channels,
                                                                     device_errors_);
    }
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::embedding_backward(Tensor dtable, const Tensor& tokens, const Tensor& dout) {
  const char* op = "embedding_backward";
  expect_device(dtable, op, "dtable");
  expect_device(tokens, op, "tokens");
  expect_device(dout, op, "dout");
  expect_dtype(tokens, DType::i32, op, "tokens");
  expect_dtype(dtable, DType::f32, op, "dtable (parameter gradients are f32)");
  LUMINA_CHECK(dtable.rank() == 2, "{}: dtable must be (V, C), got {}", op, dtable.shape.str());
  const int64_t vocab = dtable.dim(0), channels = dtable.dim(1), rows = tokens.numel();
  check_shape(dout.flatten_2d(), Shape{rows, channels}, "embedding_backward: dout (flattened, as (N, C))");
  LUMINA_CHECK(rows < (int64_t{1} << 31), "{}: {} tokens in one call; pass at most 2^31 - 1", op, rows);
  if (rows == 0 || channels == 0) return;
  NvtxRange range(op);
  const int64_t padded = next_power_of_two(rows < 2 ? 2 : rows);
  auto* keys = static_cast<uint64_t*>(scratch(static_cast<size_t>(padded) * sizeof(uint64_t), op));
  const int64_t max_blocks = 16LL * multiprocessor_count_;
  embedding_keys_kernel<<<grid_blocks(padded, 256, max_blocks), 256, 0, stream_>>>(
      keys, static_cast<const int32_t*>(tokens.data), rows, padded, vocab, device_errors_);
  LUMINA_CUDA_CHECK_LAUNCH();

  const int tile = static_cast<int>(padded < kSortTile ? padded : kSortTile);
  const unsigned tiles = static_cast<unsigned>(padded / tile);
  const size_t tile_bytes = static_cast<size_t>(tile) * sizeof(uint64_t);
  bitonic_tile_kernel<<<tiles, tile / 2, tile_bytes, stream_>>>(keys, tile, 0);
  LUMINA_CUDA_CHECK_LAUNCH();
  for (int64_t k = 2LL * tile; k <= padded; k <<= 1) {
    for (int64_t j = k / 2; j >= tile; j >>= 1) {
      bitonic_global_kernel<<<grid_blocks(padded / 2, 256, max_blocks), 256, 0, stream_>>>(keys, padded, k, j);
      LUMINA_CUDA_CHECK_LAUNCH();
    }
    bitonic_tile_kernel<<<tiles, tile / 2, tile_bytes, stream_>>>(keys, tile, k);
    LUMINA_CUDA_CHECK_LAUNCH();
  }

  dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    embedding_backward_kernel<T><<<grid_blocks(rows, 1, max_blocks), row_threads(channels, 256), 0, stream_>>>(
        static_cast<float*>(dtable.data), keys, static_cast<const T*>(dout.data), rows, channels);
    LUMINA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lumina
