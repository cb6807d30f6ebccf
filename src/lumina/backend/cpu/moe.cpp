// Mixture-of-experts ops (backend.h, "mixture of experts"): the router's
// softmax / top-k and its backward, the dispatch of (token, choice) slots to
// expert-contiguous rows, the gather of token rows and the weighted combine
// with its backward. The tensorised form of model/moe_routing.cpp's host math.
// N tokens, E experts, top-k, C channels, R rows; slot = n * k + j.
//
// Invariants: float tensors share one dtype (f32 or f64, stat tensors too);
// index tensors are i32; every output is overwritten (moe_combine adds when
// asked). Per-token work runs over fixed chunks of tokens, and the router's
// sums add per-chunk partials (f64) in chunk order, so results do not depend
// on the thread count. moe_dispatch is sequential (O(N k + R), cheap).
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "lumina/backend/cpu/cpu_backend.h"
#include "lumina/backend/moe_checks.h"

namespace lumina {

namespace {

constexpr int64_t kTokenChunk = 256;  // tokens per parallel chunk of the router
constexpr int64_t kRowChunk = 64;     // rows (or tokens) per parallel chunk of gather / combine

// Throws unless t has n elements (slot_row may be (N*k) or (N, k)).
void check_numel(const Tensor& t, int64_t n, const char* op, const char* name) {
  LUMINA_CHECK(t.numel() == n, "{}: {} has shape {} ({} elements), expected {} elements", op, name, t.shape.str(),
               t.numel(), n);
}

// Throws unless t is a host tensor of dtype `want` and shape s.
void check_operand(const Tensor& t, DType want, const Shape& s, const char* op, const char* name) {
  cpu::check_host_dtype(t, want, op, name);
  LUMINA_CHECK(t.shape == s, "{}: {} has shape {}, expected {}", op, name, t.shape.str(), s.str());
}

// Throws unless every index in idx lies in [low, high).
void check_indices(const int32_t* idx, int64_t n, int64_t low, int64_t high, const char* op, const char* name) {
  for (int64_t i = 0; i < n; ++i)
    LUMINA_CHECK(idx[i] >= low && idx[i] < high, "{}: {}[{}] = {} is outside [{}, {})", op, name, i, idx[i], low, high);
}

// One token of the router. s (E) in: logits + noise; out: probs. Returns lse;
// adds -sum p log p to *entropy. taken (E) is scratch.
template <class T>
T route_token(T* pr, const int32_t* available, int64_t E, int64_t k, T inv_temperature, int32_t* choice, T* weight,
              uint8_t* taken, T* entropy) {
  T max_s = -std::numeric_limits<T>::infinity();
  for (int64_t e = 0; e < E; ++e) {
    if (!available[e]) continue;
    pr[e] *= inv_temperature;
    max_s = std::max(max_s, pr[e]);
  }
  T sum = 0;
  for (int64_t e = 0; e < E; ++e) {
    pr[e] = available[e] ? std::exp(pr[e] - max_s) : T(0);
    sum += pr[e];
  }
  for (int64_t e = 0; e < E; ++e) pr[e] /= sum;
  T ent = 0;
  for (int64_t e = 0; e < E; ++e)
    if (pr[e] > T(0)) ent -= pr[e] * std::log(pr[e]);
  *entropy += ent;
  // Top-k by repeated argmax over the available experts not yet taken; ties to the lower id.
  std::fill_n(taken, E, uint8_t{0});
  T chosen_sum = 0;
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e)
      if (available[e] && !taken[e] && (best < 0 || pr[e] > pr[best])) best = e;
    taken[best] = 1;
    choice[j] = static_cast<int32_t>(best);
    chosen_sum += pr[best];
  }
  for (int64_t j = 0; j < k; ++j) weight[j] = pr[choice[j]] / chosen_sum;
  return max_s + std::log(sum);
}

}  // namespace

// probs (N,E), lse (N), choice (N,k) i32, weight (N,k), sums (E+2) from logits (N,E),
// noise (N,E) or empty, available (E) i32.
void CpuBackend::moe_router_forward(Tensor probs, Tensor lse, Tensor choice, Tensor weight, Tensor sums,
                                    const Tensor& logits, const Tensor& noise, const Tensor& available,
                                    double inv_temperature) {
  const char* op = "moe_router_forward";
  cpu::check_host(logits, op, "logits");
  LUMINA_CHECK(logits.rank() == 2, "{}: logits must be (N, E), got {}", op, logits.shape.str());
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  const int64_t N = logits.dim(0), E = logits.dim(1), k = choice.dim(1);
  const DType dt = logits.dtype;
  check_operand(choice, DType::i32, Shape{N, k}, op, "choice");
  check_operand(probs, dt, Shape{N, E}, op, "probs");
  check_operand(lse, dt, Shape{N}, op, "lse");
  check_operand(weight, dt, Shape{N, k}, op, "weight");
  check_operand(sums, dt, Shape{E + 2}, op, "sums");
  check_operand(available, DType::i32, Shape{E}, op, "available");
  if (!noise.empty()) check_operand(noise, dt, Shape{N, E}, op, "noise");
  LUMINA_CHECK(inv_temperature > 0.0 && std::isfinite(inv_temperature),
               "{}: inv_temperature = {} must be finite and > 0 (routing_temperature > 0)", op, inv_temperature);
  const int32_t* av = available.ptr<int32_t>();
  int64_t available_count = 0;
  for (int64_t e = 0; e < E; ++e) {
    LUMINA_CHECK(av[e] == 0 || av[e] == 1, "{}: available[{}] = {} must be 0 or 1", op, e, av[e]);
    available_count += av[e];
  }
  LUMINA_CHECK(k >= 1 && available_count >= k, "{}: top-k = {} needs at least k available experts, {} are available",
               op, k, available_count);
  int32_t* cp = choice.ptr<int32_t>();
  cpu::dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* pp = probs.ptr<T>();
    T* lp = lse.ptr<T>();
    T* wp = weight.ptr<T>();
    const T* xp = logits.ptr<T>();
    const T* np = noise.empty() ? nullptr : noise.ptr<T>();
    const int64_t chunks = (N + kTokenChunk - 1) / kTokenChunk;
    // partials (chunks, E+2): each chunk's sums, added below in chunk order.
    std::vector<double> partials(static_cast<size_t>(chunks * (E + 2)), 0.0);
    cpu::parallel_chunks(N, kTokenChunk, [&](int64_t begin, int64_t end) {
      double* part = partials.data() + (begin / kTokenChunk) * (E + 2);
      std::vector<uint8_t> taken(static_cast<size_t>(E));
      for (int64_t n = begin; n < end; ++n) {
        T* pr = pp + n * E;
        for (int64_t e = 0; e < E; ++e) pr[e] = xp[n * E + e] + (np ? np[n * E + e] : T(0));
        T entropy = 0;
        const T l =
            route_token(pr, av, E, k, static_cast<T>(inv_temperature), cp + n * k, wp + n * k, taken.data(), &entropy);
        lp[n] = l;
        for (int64_t e = 0; e < E; ++e) part[e] += pr[e];
        part[E] += entropy;
        part[E + 1] += static_cast<double>(l) * l;
      }
    });
    T* sp = sums.ptr<T>();
    for (int64_t i = 0; i < E + 2; ++i) {
      double total = 0.0;
      for (int64_t c = 0; c < chunks; ++c) total += partials[static_cast<size_t>(c * (E + 2) + i)];
      sp[i] = static_cast<T>(total);
    }
  });
}

// dlogits (N,E): per token, with a_e = aux_coef * assigned_e and g_j = dweight_j when kept, else 0:
//   ds_e = p_e (a_e - sum_e' p_e' a_e') + z_coef lse p_e + [e = choice_j] w_j (g_j - sum_i w_i g_i)
//   dlogits = ds * inv_temperature.
void CpuBackend::moe_router_backward(Tensor dlogits, const Tensor& probs, const Tensor& lse, const Tensor& choice,
                                     const Tensor& weight, const Tensor& slot_row, const Tensor& dweight,
                                     const Tensor& assigned, double inv_temperature, double aux_coef, double z_coef) {
  const char* op = "moe_router_backward";
  cpu::check_host(probs, op, "probs");
  LUMINA_CHECK(probs.rank() == 2, "{}: probs must be (N, E), got {}", op, probs.shape.str());
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  const int64_t N = probs.dim(0), E = probs.dim(1), k = choice.dim(1);
  const DType dt = probs.dtype;
  check_operand(dlogits, dt, Shape{N, E}, op, "dlogits");
  check_operand(lse, dt, Shape{N}, op, "lse");
  check_operand(choice, DType::i32, Shape{N, k}, op, "choice");
  check_operand(weight, dt, Shape{N, k}, op, "weight");
  check_operand(dweight, dt, Shape{N, k}, op, "dweight");
  check_operand(assigned, DType::i32, Shape{E}, op, "assigned");
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  check_numel(slot_row, N * k, op, "slot_row");
  const int32_t* cp = choice.ptr<int32_t>();
  const int32_t* rp = slot_row.ptr<int32_t>();
  const int32_t* ap = assigned.ptr<int32_t>();
  check_indices(cp, N * k, 0, E, op, "choice");
  cpu::dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* dl = dlogits.ptr<T>();
    const T* pp = probs.ptr<T>();
    const T* lp = lse.ptr<T>();
    const T* wp = weight.ptr<T>();
    const T* gp = dweight.ptr<T>();
    std::vector<T> a(static_cast<size_t>(E));  // d aux / d p_e
    for (int64_t e = 0; e < E; ++e) a[static_cast<size_t>(e)] = static_cast<T>(aux_coef * ap[e]);
    const T inv_t = static_cast<T>(inv_temperature), zc = static_cast<T>(z_coef);
    cpu::parallel_chunks(N, kTokenChunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const T* pr = pp + n * E;
        T* ds = dl + n * E;
        T mean_a = 0;
        for (int64_t e = 0; e < E; ++e) mean_a += pr[e] * a[static_cast<size_t>(e)];
        const T dz = zc * lp[n];
        for (int64_t e = 0; e < E; ++e) ds[e] = pr[e] * (a[static_cast<size_t>(e)] - mean_a) + dz * pr[e];
        T mean_g = 0;
        for (int64_t j = 0; j < k; ++j)
          if (rp[n * k + j] >= 0) mean_g += wp[n * k + j] * gp[n * k + j];
        for (int64_t j = 0; j < k; ++j) {
          const T g = rp[n * k + j] >= 0 ? gp[n * k + j] : T(0);
          ds[cp[n * k + j]] += wp[n * k + j] * (g - mean_g);
        }
        for (int64_t e = 0; e < E; ++e) ds[e] *= inv_t;
      }
    });
  });
}

// Slots in slot order; rank = earlier slots of the same expert; kept iff rank < capacity.
void CpuBackend::moe_dispatch(Tensor slot_row, Tensor row_token, Tensor group_begin, Tensor assigned,
                              const Tensor& choice, int64_t capacity, int64_t row_align, int64_t group_stride) {
  const char* op = "moe_dispatch";
  cpu::check_host_dtype(choice, DType::i32, op, "choice");
  LUMINA_CHECK(choice.rank() == 2, "{}: choice must be (N, k), got {}", op, choice.shape.str());
  cpu::check_host_dtype(assigned, DType::i32, op, "assigned");
  LUMINA_CHECK(assigned.rank() == 1, "{}: assigned must be (E), got {}", op, assigned.shape.str());
  const int64_t N = choice.dim(0), k = choice.dim(1), E = assigned.dim(0), slots = N * k;
  check_operand(group_begin, DType::i32, Shape{E + 1}, op, "group_begin");
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  check_numel(slot_row, slots, op, "slot_row");
  cpu::check_host_dtype(row_token, DType::i32, op, "row_token");
  LUMINA_CHECK(row_token.rank() == 1, "{}: row_token must be (R), got {}", op, row_token.shape.str());
  const int64_t R = row_token.numel();
  check_moe_dispatch_layout(op, E, slots, R, capacity, row_align, group_stride);
  const int32_t* cp = choice.ptr<int32_t>();
  check_indices(cp, slots, 0, E, op, "choice");
  int32_t* sr = slot_row.ptr<int32_t>();
  int32_t* rt = row_token.ptr<int32_t>();
  int32_t* gb = group_begin.ptr<int32_t>();
  int32_t* as = assigned.ptr<int32_t>();
  // rank of every slot; assigned = the counts.
  std::fill_n(as, E, 0);
  for (int64_t s = 0; s < slots; ++s) sr[s] = as[cp[s]]++;
  gb[0] = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t kept = std::min<int64_t>(as[e], capacity);
    gb[e + 1] = static_cast<int32_t>(group_stride > 0 ? (e + 1) * group_stride
                                                      : gb[e] + (kept + row_align - 1) / row_align * row_align);
  }
  std::fill_n(rt, R, -1);
  for (int64_t s = 0; s < slots; ++s) {
    if (sr[s] >= capacity) {
      sr[s] = -1;
      continue;
    }
    sr[s] += gb[cp[s]];
    rt[sr[s]] = static_cast<int32_t>(s / k);
  }
}

// rows (R,C) = x (N,C) [row_token], zero rows where row_token < 0.
void CpuBackend::moe_gather(Tensor rows, const Tensor& x, const Tensor& row_token) {
  const char* op = "moe_gather";
  cpu::check_host(x, op, "x");
  LUMINA_CHECK(x.rank() == 2, "{}: x must be (N, C), got {}", op, x.shape.str());
  cpu::check_host_dtype(row_token, DType::i32, op, "row_token");
  LUMINA_CHECK(row_token.rank() == 1, "{}: row_token must be (R), got {}", op, row_token.shape.str());
  const int64_t N = x.dim(0), C = x.dim(1), R = row_token.dim(0);
  check_operand(rows, x.dtype, Shape{R, C}, op, "rows");
  const int32_t* rt = row_token.ptr<int32_t>();
  check_indices(rt, R, std::numeric_limits<int32_t>::min(), N, op, "row_token");
  cpu::dispatch_float(x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* out = rows.ptr<T>();
    const T* xp = x.ptr<T>();
    cpu::parallel_chunks(R, kRowChunk, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (rt[r] < 0) std::fill_n(out + r * C, C, T(0));
        else std::memcpy(out + r * C, xp + rt[r] * C, static_cast<size_t>(C) * sizeof(T));
      }
    });
  });
}

// out (N,C) = (out if accumulate, else 0) + sum_j [slot_row >= 0] weight_{n,j} y[slot_row[n*k+j]], in j order.
void CpuBackend::moe_combine(Tensor out, const Tensor& y, const Tensor& slot_row, const Tensor& weight,
                             bool accumulate) {
  const char* op = "moe_combine";
  cpu::check_host(out, op, "out");
  LUMINA_CHECK(out.rank() == 2, "{}: out must be (N, C), got {}", op, out.shape.str());
  cpu::check_host_dtype(y, out.dtype, op, "y");
  LUMINA_CHECK(y.rank() == 2 && y.dim(1) == out.dim(1), "{}: y must be (R, C = {}), got {}", op, out.dim(1),
               y.shape.str());
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  const int64_t N = out.dim(0), C = out.dim(1), R = y.dim(0);
  LUMINA_CHECK(N > 0 || slot_row.numel() == 0, "{}: out has no tokens but slot_row has {} slots", op, slot_row.numel());
  const int64_t k = !weight.empty() ? weight.dim(-1) : (N > 0 ? slot_row.numel() / N : 0);
  if (!weight.empty()) check_operand(weight, out.dtype, Shape{N, k}, op, "weight");
  check_numel(slot_row, N * k, op, "slot_row");
  const int32_t* sr = slot_row.ptr<int32_t>();
  check_indices(sr, N * k, std::numeric_limits<int32_t>::min(), R, op, "slot_row");
  cpu::dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* outp = out.ptr<T>();
    const T* yp = y.ptr<T>();
    const T* wp = weight.empty() ? nullptr : weight.ptr<T>();
    cpu::parallel_chunks(N, kRowChunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        T* o = outp + n * C;
        if (!accumulate) std::fill_n(o, C, T(0));
        for (int64_t j = 0; j < k; ++j) {
          const int64_t row = sr[n * k + j];
          if (row < 0) continue;
          const T w = wp ? wp[n * k + j] : T(1);
          const T* yr = yp + row * C;
          for (int64_t c = 0; c < C; ++c) o[c] += w * yr[c];
        }
      }
    });
  });
}

// dy (R,C): row slot_row[n*k+j] = weight_{n,j} dout_n (weight empty: 1, as moe_combine),
// rows with row_token < 0 zeroed; dweight (N,k) = dout_n . y[slot_row[n*k+j]], 0 at dropped slots.
void CpuBackend::moe_combine_backward(Tensor dy, Tensor dweight, const Tensor& dout, const Tensor& y,
                                      const Tensor& slot_row, const Tensor& weight, const Tensor& row_token) {
  const char* op = "moe_combine_backward";
  cpu::check_host(dout, op, "dout");
  LUMINA_CHECK(dout.rank() == 2, "{}: dout must be (N, C), got {}", op, dout.shape.str());
  cpu::check_host_dtype(y, dout.dtype, op, "y");
  LUMINA_CHECK(y.rank() == 2 && y.dim(1) == dout.dim(1), "{}: y must be (R, C = {}), got {}", op, dout.dim(1),
               y.shape.str());
  LUMINA_CHECK(dweight.rank() == 2, "{}: dweight must be (N, k), got {}", op, dweight.shape.str());
  const int64_t N = dout.dim(0), C = dout.dim(1), R = y.dim(0), k = dweight.dim(1);
  check_operand(dweight, dout.dtype, Shape{N, k}, op, "dweight");
  check_operand(dy, dout.dtype, Shape{R, C}, op, "dy");
  if (!weight.empty()) check_operand(weight, dout.dtype, Shape{N, k}, op, "weight");
  check_operand(row_token, DType::i32, Shape{R}, op, "row_token");
  cpu::check_host_dtype(slot_row, DType::i32, op, "slot_row");
  check_numel(slot_row, N * k, op, "slot_row");
  const int32_t* sr = slot_row.ptr<int32_t>();
  const int32_t* rt = row_token.ptr<int32_t>();
  check_indices(sr, N * k, std::numeric_limits<int32_t>::min(), R, op, "slot_row");
  cpu::dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* dyp = dy.ptr<T>();
    T* dwp = dweight.ptr<T>();
    const T* dop = dout.ptr<T>();
    const T* yp = y.ptr<T>();
    const T* wp = weight.empty() ? nullptr : weight.ptr<T>();
    cpu::parallel_chunks(R, kRowChunk, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        if (rt[r] < 0) std::fill_n(dyp + r * C, C, T(0));
    });
    cpu::parallel_chunks(N, kRowChunk, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const T* d = dop + n * C;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t row = sr[n * k + j];
          if (row < 0) {
            dwp[n * k + j] = 0;
            continue;
          }
          const T w = wp ? wp[n * k + j] : T(1);
          const T* yr = yp + row * C;
          T* dr = dyp + row * C;
          T dot = 0;
          for (int64_t c = 0; c < C; ++c) {
            dot += d[c] * yr[c];
            dr[c] = w * d[c];
          }
          dwp[n * k + j] = dot;
        }
      }
    });
  });
}

}  // namespace lumina
