#pragma once
// Finite-difference gradient check for backend ops, in f64.
//
// The scalar is L = sum_k sum(outputs[k] * weights[k]) with fixed random
// weights R (so dL/d(output) = R is what the op's backward receives). For an
// input element x_i the numeric gradient is the central difference
//   n_i = (L(x_i + h) - L(x_i - h)) / (2h),  h = 5e-6,
// computed as sum_j (out_j(+h) - out_j(-h)) R_j / (2h) so that the outputs'
// difference is taken before the sum (no cancellation in a large L). The
// check passes when for every checked element
//   |a_i - n_i| / max(|a_i|, |n_i|, floor) <= tolerance,  floor = 1e-3, tolerance = 1e-6
// (the floor keeps gradients that are ~0 from turning round-off into a large
// relative error). Inputs with more than max_samples elements are checked on
// a reproducible random sample of elements.
// Why h = 5e-6: the truncation error h^2 f'''/6 is ~1e-11 relative and the
// round-off of the outputs (~1e-16 |out| / h) dominates; over the backend's
// checks the largest error is ~5e-8 at h = 5e-6 against ~3e-7 at h = 1e-6.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "gradcheck/host_tensor.h"

namespace lumina::test {

struct WeightedOutput {
  Tensor out;     // an output the forward writes (f64)
  Tensor weight;  // R: same shape
};

struct GradcheckOptions {
  double step = 5e-6;
  double floor = 1e-3;
  double tolerance = 1e-6;
  int64_t max_samples = 48;
  uint64_t sample_seed = 7;
};

struct GradcheckReport {
  double max_rel_error = 0.0;
  int64_t worst_index = -1;
  double analytic_at_worst = 0.0, numeric_at_worst = 0.0;
  int64_t checked = 0;

  bool passed(const GradcheckOptions& o) const { return checked > 0 && max_rel_error <= o.tolerance; }
  std::string str() const {
    return fmt::format("max relative error {:.3e} at element {} (analytic {:.12e}, numeric {:.12e}), {} checked",
                       max_rel_error, worst_index, analytic_at_worst, numeric_at_worst, checked);
  }
};

// The elements of an n-element input to check: all, or max_samples distinct random ones.
inline std::vector<int64_t> gradcheck_indices(int64_t n, const GradcheckOptions& o) {
  std::vector<int64_t> idx;
  if (n <= o.max_samples) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  const Rng rng(o.sample_seed, RngPurpose::test, 1);
  for (uint64_t draw = 0; static_cast<int64_t>(idx.size()) < o.max_samples; ++draw) {
    const auto i = static_cast<int64_t>(rng.uniform(draw) * static_cast<double>(n));
    if (std::find(idx.begin(), idx.end(), i) == idx.end()) idx.push_back(i);
  }
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Compares `analytic` (dL/dx, x's shape) with central differences of L.
// forward() must recompute every output from the current contents of x
// (and of the other inputs, which stay fixed); x is restored afterwards.
inline GradcheckReport check_gradient(Tensor x, const Tensor& analytic, const std::function<void()>& forward,
                                      const std::vector<WeightedOutput>& outputs, const GradcheckOptions& o = {}) {
  LUMINA_CHECK(x.dtype == DType::f64 && analytic.dtype == DType::f64 && x.shape == analytic.shape,
               "check_gradient: x and analytic must be f64 of one shape, got {} {} and {} {}", dtype_name(x.dtype),
               x.shape.str(), dtype_name(analytic.dtype), analytic.shape.str());
  double* xp = x.ptr<double>();
  const double* ap = analytic.ptr<double>();
  // Snapshots of the outputs at x_i + h.
  std::vector<std::vector<double>> plus(outputs.size());
  GradcheckReport report;
  for (const int64_t i : gradcheck_indices(x.numel(), o)) {
    const double saved = xp[i];
    xp[i] = saved + o.step;
    forward();
    for (size_t k = 0; k < outputs.size(); ++k) {
      const double* out = outputs[k].out.ptr<double>();
      plus[k].assign(out, out + outputs[k].out.numel());
    }
    xp[i] = saved - o.step;
    forward();
    xp[i] = saved;
    double numeric = 0.0;
    for (size_t k = 0; k < outputs.size(); ++k) {
      const double* minus = outputs[k].out.ptr<double>();
      const double* weight = outputs[k].weight.ptr<double>();
      for (int64_t j = 0; j < outputs[k].out.numel(); ++j)
        numeric += (plus[k][static_cast<size_t>(j)] - minus[j]) * weight[j];
    }
    numeric /= 2.0 * o.step;
    const double a = ap[i];
    const double err = std::fabs(a - numeric) / std::max({std::fabs(a), std::fabs(numeric), o.floor});
    ++report.checked;
    if (err > report.max_rel_error || report.worst_index < 0) {
      report.max_rel_error = err;
      report.worst_index = i;
      report.analytic_at_worst = a;
      report.numeric_at_worst = numeric;
    }
  }
  forward();  // leave the outputs consistent with the restored x
  return report;
}

}  // namespace lumina::test
