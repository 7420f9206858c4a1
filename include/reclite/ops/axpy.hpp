// Vector updates: y += alpha * x (axpy), y += x (add_to) and out = alpha * in (scale).
// Invariants: arrays hold n floats, any alignment. x must not overlap y; scale allows in == out.
// Never allocates.
// Maths: BLAS saxpy / sscal semantics (no special case for alpha == 0: 0 * inf is NaN, as in IEEE).
// Rounding vs the reference: add_to and scale round exactly as the reference (one add or one multiply
// per element); axpy uses a fused multiply-add, one rounding instead of two, so it can differ by 1 ulp.
#pragma once

#include <cstddef>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
inline void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
inline void add_to(const float* x, float* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += x[i];
}
inline void scale(const float* in, float alpha, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = alpha * in[i];
}
}  // namespace reference

// y[i] += alpha * x[i].
inline void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  const Batch factor(alpha);
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    simd::fma(factor, Batch::load_unaligned(x + i), Batch::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
#else
  reference::axpy(alpha, x, y, n);
#endif
}

// y[i] += x[i].
inline void add_to(const float* x, float* y, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    (Batch::load_unaligned(y + i) + Batch::load_unaligned(x + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += x[i];
#else
  reference::add_to(x, y, n);
#endif
}

// out[i] = alpha * in[i]; in == out allowed.
inline void scale(const float* in, float alpha, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  const Batch factor(alpha);
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size) (factor * Batch::load_unaligned(in + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = alpha * in[i];
#else
  reference::scale(in, alpha, out, n);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
