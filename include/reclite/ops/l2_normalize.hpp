// L2 normalisation of one vector, matching torch.nn.functional.normalize(p=2):
// out[i] = in[i] / max(||in||, epsilon); squared_norm(in) = sum_i in[i]^2.
// Invariants: in and out hold n floats, any alignment; in == out is allowed (the norm is computed before
// anything is written). A zero vector gives zeros (0 / epsilon), never NaN. Never allocates.
// Maths: the norm is sqrt of a float32 sum of squares, as PyTorch's; it overflows to inf for |x| above
// about 1e19 (the output is then 0), which embedding vectors never approach.
// Rounding vs the reference: the SIMD path sums squares in lanes with FMA (the reference sequentially); the
// division is the same in both (a true division, as torch, not a multiply by a reciprocal).
#pragma once

#include <cmath>
#include <cstddef>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
inline float squared_norm(const float* in, std::size_t n) noexcept {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += in[i] * in[i];
  return sum;
}

inline void l2_normalize(const float* in, float* out, std::size_t n, float epsilon = 1e-12f) noexcept {
  const float norm = std::sqrt(squared_norm(in, n));
  // A NaN norm stays NaN (as torch's clamp_min keeps it) instead of being replaced by epsilon.
  const float divisor = std::isnan(norm) ? norm : (norm > epsilon ? norm : epsilon);
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] / divisor;
}
}  // namespace reference

// Sum of squares of in[0, n).
inline float squared_norm(const float* in, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  Batch sum0(0.0f), sum1(0.0f);
  std::size_t i = 0;
  for (; i < n - n % (2 * Batch::size); i += 2 * Batch::size) {
    const Batch first = Batch::load_unaligned(in + i);
    const Batch second = Batch::load_unaligned(in + i + Batch::size);
    sum0 = simd::fma(first, first, sum0);
    sum1 = simd::fma(second, second, sum1);
  }
  for (; i < n - n % Batch::size; i += Batch::size) {
    const Batch values = Batch::load_unaligned(in + i);
    sum0 = simd::fma(values, values, sum0);
  }
  float sum = simd::reduce_add(sum0 + sum1);
  for (; i < n; ++i) sum += in[i] * in[i];
  return sum;
#else
  return reference::squared_norm(in, n);
#endif
}

// out = in / max(||in||, epsilon).
inline void l2_normalize(const float* in, float* out, std::size_t n, float epsilon = 1e-12f) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  const float norm = std::sqrt(squared_norm(in, n));
  const float divisor = std::isnan(norm) ? norm : (norm > epsilon ? norm : epsilon);
  const Batch divisor_lanes(divisor);
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    (Batch::load_unaligned(in + i) / divisor_lanes).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = in[i] / divisor;
#else
  reference::l2_normalize(in, out, n, epsilon);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
