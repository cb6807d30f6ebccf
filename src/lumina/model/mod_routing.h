#pragma once
// Host-side Mixture-of-Depths routing math (f64): the capacity schedule, which
// tokens of one sequence run a MoD layer, and the predictor's loss.
// (The layer's semantics are in model/mod.h.)
//
// Capacity: fraction c(step) = target when anneal_steps = 0; otherwise linear
//   from 1.0 at step 0 to target at step anneal_steps, constant after:
//   c = 1 + (target - 1) * min(step, anneal_steps) / anneal_steps.
//   Tokens per sequence of T: k = clamp(round(c * T), 1, T), round = nearest
//   integer, halves away from zero (std::llround).
// Selections (k positions of [0, T), returned in increasing order):
//   learned: the k largest router scores, ties to the lower position;
//   static:  t = ceil(j * T / k), j = 0 .. k-1 (evenly spaced, always t = 0);
//            equivalently t runs iff t == 0 or floor(t k / T) > floor((t-1) k / T),
//            a test of t alone (causal) used at generation;
//   random:  the k positions with the smallest 32-bit keys rng.bits(first_index + t)
//            (ties to the lower position): exactly k, uniform over subsets.
// Predictor loss (per token, logit p, label y = 1 when the token was selected):
//   bce = softplus(p) - y p = -[y log s + (1-y) log(1-s)], s = sigmoid(p);
//   d bce / d p = s - y.
#include <cstdint>
#include <string>
#include <vector>

#include "lumina/core/rng.h"

namespace lumina {

enum class ModRoutingType { learned, static_pattern, random };

// "learned" | "static" | "random" (model.mod_routing_type); throws on anything else.
ModRoutingType mod_routing_type_from_string(const std::string& name);

// The annealed capacity fraction at optimizer step `step` (see above).
double mod_capacity_fraction(double target, int64_t anneal_steps, int64_t step);
// Tokens of a sequence of seq_len that run the layer at capacity fraction c.
int64_t mod_capacity(int64_t seq_len, double fraction);

// Whether position t belongs to the static pattern of k positions out of seq_len.
bool mod_static_selected(int64_t t, int64_t seq_len, int64_t k);

// Appends the k selected positions of one sequence (increasing) to `out`.
void mod_select_static(int64_t seq_len, int64_t k, std::vector<int32_t>& out);
void mod_select_top_k(const double* scores, int64_t seq_len, int64_t k, std::vector<int32_t>& out);
void mod_select_random(const Rng& rng, uint64_t first_index, int64_t seq_len, int64_t k, std::vector<int32_t>& out);

// softplus(p) - y p, computed without overflow.
double mod_predictor_bce(double logit, bool selected);
double mod_sigmoid(double x);  // 1 / (1 + e^-x), without overflow

}  // namespace lumina
