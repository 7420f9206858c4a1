// Softmax over one row, plain and masked: out[i] = exp(in[i] - max) / sum_j exp(in[j] - max).
// Invariants: in, out hold n floats (valid n bytes), any alignment; in == out is allowed (the maximum is
// found before anything is written, and element i is only read to write element i).
// Maths: the max-subtracted form used by torch.softmax, so huge finite logits never overflow; the sum is at
// least 1 (the maximum contributes exp(0)), so the reciprocal is always finite. Edge cases, chosen so a row
// never turns into NaN unless an input is NaN:
//   - masked: entries with valid[i] == 0 take no part and are exactly 0; a fully masked row is all zeros;
//   - every taking-part entry -inf: all zeros (like a fully masked row);
//   - some entries +inf: they share the mass equally (the limit), everything else 0;
//   - any taking-part NaN: every taking-part output is NaN.
// Rounding vs the reference: exp comes from xsimd's polynomial instead of libm (a few ulp); the plain
// softmax sums exponentials in lanes, the masked one sums them sequentially like the reference.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace detail {
inline bool softmax_takes_part(const std::uint8_t* valid, std::size_t i) noexcept {
  return valid == nullptr || valid[i] != 0;
}

// Rows whose maximum is not finite (+inf, -inf or no entry): the limits listed in the header comment.
inline void softmax_non_finite(const float* in, const std::uint8_t* valid, float* out, std::size_t n,
                               float largest) noexcept {
  std::size_t infinite = 0;
  bool has_nan = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!softmax_takes_part(valid, i)) continue;
    if (std::isnan(in[i])) has_nan = true;
    if (in[i] == std::numeric_limits<float>::infinity()) ++infinite;
  }
  const float share = infinite > 0 ? 1.0f / static_cast<float>(infinite) : 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (!softmax_takes_part(valid, i))
      out[i] = 0.0f;
    else if (has_nan)
      out[i] = std::numeric_limits<float>::quiet_NaN();
    else
      out[i] = (largest > 0.0f && in[i] == largest) ? share : 0.0f;
  }
}

// The sum of exponentials is NaN only when a taking-part input is NaN: such a row is NaN where it takes part.
inline void softmax_fill_nan(const std::uint8_t* valid, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = softmax_takes_part(valid, i) ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
}

// Maximum over taking-part entries, skipping NaN; -inf when there is none.
inline float softmax_max(const float* in, const std::uint8_t* valid, std::size_t n) noexcept {
  float largest = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < n; ++i)
    if (softmax_takes_part(valid, i) && in[i] > largest) largest = in[i];
  return largest;
}

// Sequential float32 reference for both kernels; valid == nullptr means every entry takes part.
inline void softmax_reference(const float* in, const std::uint8_t* valid, float* out, std::size_t n) noexcept {
  const float largest = softmax_max(in, valid, n);
  if (!std::isfinite(largest)) return softmax_non_finite(in, valid, out, n, largest);
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (softmax_takes_part(valid, i)) {
      out[i] = std::exp(in[i] - largest);
      sum += out[i];
    } else {
      out[i] = 0.0f;
    }
  }
  if (std::isnan(sum)) return softmax_fill_nan(valid, out, n);
  const float inverse = 1.0f / sum;
  for (std::size_t i = 0; i < n; ++i) out[i] *= inverse;
}

#if RECLITE_HAS_SIMD
inline void scale_in_place(float* values, float factor, std::size_t n) noexcept {
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    (Batch::load_unaligned(values + i) * Batch(factor)).store_unaligned(values + i);
  for (; i < n; ++i) values[i] *= factor;
}

// out[i] = exp(in[i] - largest) for every i (masked entries too: overwritten by the caller).
inline void exp_shifted(const float* in, float largest, float* out, std::size_t n) noexcept {
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    simd::exp(Batch::load_unaligned(in + i) - Batch(largest)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = std::exp(in[i] - largest);
}
#endif
}  // namespace detail

namespace reference {
inline void softmax(const float* in, float* out, std::size_t n) noexcept {
  detail::softmax_reference(in, nullptr, out, n);
}
inline void masked_softmax(const float* in, const std::uint8_t* valid, float* out, std::size_t n) noexcept {
  detail::softmax_reference(in, valid, out, n);
}
}  // namespace reference

// Numerically stable softmax of in[0, n).
inline void softmax(const float* in, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  const float negative_infinity = -std::numeric_limits<float>::infinity();
  std::size_t i = 0;
  float largest = negative_infinity;
  if (n >= Batch::size) {
    Batch lanes(negative_infinity);
    for (; i < n - n % Batch::size; i += Batch::size) lanes = simd::max(lanes, Batch::load_unaligned(in + i));
    largest = simd::reduce_max(lanes);
  }
  for (; i < n; ++i) largest = in[i] > largest ? in[i] : largest;
  // A NaN may or may not win the lane maximum; either way it reaches every output through the sum.
  if (std::isinf(largest)) return detail::softmax_non_finite(in, nullptr, out, n, largest);
  Batch lane_sums(0.0f);
  i = 0;
  for (; i < n - n % Batch::size; i += Batch::size) {
    Batch values = simd::exp(Batch::load_unaligned(in + i) - Batch(largest));
    values.store_unaligned(out + i);
    lane_sums = lane_sums + values;
  }
  float sum = simd::reduce_add(lane_sums);
  for (; i < n; ++i) {
    out[i] = std::exp(in[i] - largest);
    sum += out[i];
  }
  detail::scale_in_place(out, 1.0f / sum, n);
#else
  reference::softmax(in, out, n);
#endif
}

// Softmax over the entries with valid[i] != 0; the others get exactly 0; no valid entry gives all zeros.
inline void masked_softmax(const float* in, const std::uint8_t* valid, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  const float largest = detail::softmax_max(in, valid, n);
  if (!std::isfinite(largest)) return detail::softmax_non_finite(in, valid, out, n, largest);
  detail::exp_shifted(in, largest, out, n);
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (valid[i] != 0)
      sum += out[i];
    else
      out[i] = 0.0f;
  }
  if (std::isnan(sum)) return detail::softmax_fill_nan(valid, out, n);
  detail::scale_in_place(out, 1.0f / sum, n);
#else
  reference::masked_softmax(in, valid, out, n);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
