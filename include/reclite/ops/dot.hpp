// Inner product of two float vectors: sum_i a[i] * b[i].
// Invariants: a and b hold n floats each, any alignment; n == 0 gives 0. Never allocates.
// Rounding vs the reference: the SIMD path keeps four independent accumulators (instruction-level
// parallelism: an FMA has ~4 cycles latency) and uses fused multiply-add, so the summation order differs
// from the reference's sequential loop; the difference is bounded by ordinary float32 summation error.
#pragma once

#include <cstddef>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
// Sequential float32 sum of products: the oracle and the no-SIMD path.
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}
}  // namespace reference

// Inner product of a[0, n) and b[0, n).
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  Batch sum0(0.0f), sum1(0.0f), sum2(0.0f), sum3(0.0f);
  std::size_t i = 0;
  for (; i < n - n % (4 * lanes); i += 4 * lanes) {
    sum0 = simd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), sum0);
    sum1 = simd::fma(Batch::load_unaligned(a + i + lanes), Batch::load_unaligned(b + i + lanes), sum1);
    sum2 = simd::fma(Batch::load_unaligned(a + i + 2 * lanes), Batch::load_unaligned(b + i + 2 * lanes), sum2);
    sum3 = simd::fma(Batch::load_unaligned(a + i + 3 * lanes), Batch::load_unaligned(b + i + 3 * lanes), sum3);
  }
  for (; i < n - n % lanes; i += lanes)
    sum0 = simd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), sum0);
  float sum = simd::reduce_add((sum0 + sum1) + (sum2 + sum3));
  for (; i < n; ++i) sum += a[i] * b[i];  // tail
  return sum;
#else
  return reference::dot(a, b, n);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
