// Layer normalisation of one row, matching torch.nn.LayerNorm over the last axis:
// out[i] = (in[i] - mean) / sqrt(var + epsilon) * gamma[i] + beta[i], with the biased variance.
// Invariants: in, out, gamma, beta hold n floats, any alignment; gamma == nullptr means 1, beta == nullptr
// means 0; in == out is allowed (the row is read completely, twice, before anything is written). n > 0
// (n == 0 writes nothing). epsilon comes from the model file: PyTorch defaults to 1e-5, RecBole uses 1e-12,
// pmixer 1e-8.
// Maths: two passes, mean first and then the mean of squared deviations, which avoids the cancellation of
// E[x^2] - E[x]^2 when |mean| >> std (constant rows give exactly var = 0). Both passes work on in[i] - in[0]
// and keep the mean as in[0] + offset, never rounded to one float, so a row at 1e4 +- 1 keeps its digits.
// Rounding vs the reference: the SIMD path sums in lanes, with an FMA for the squared deviations (the
// reference sums sequentially); the final scaling is the same expression, rounded the same way, in both.
#pragma once

#include <cmath>
#include <cstddef>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
inline void layer_norm(const float* in, const float* gamma, const float* beta, float epsilon, float* out,
                       std::size_t n) noexcept {
  if (n == 0) return;
  const float shift = in[0];
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += in[i] - shift;
  const float offset = sum / static_cast<float>(n);  // mean - shift
  float squares = 0.0f;
  for (std::size_t i = 0; i < n; ++i) squares += ((in[i] - shift) - offset) * ((in[i] - shift) - offset);
  const float inverse_std = 1.0f / std::sqrt(squares / static_cast<float>(n) + epsilon);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = ((in[i] - shift) - offset) * inverse_std * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
}
}  // namespace reference

// Normalises in[0, n) to zero mean and unit variance, then applies gamma and beta (either may be nullptr).
inline void layer_norm(const float* in, const float* gamma, const float* beta, float epsilon, float* out,
                       std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  if (n == 0) return;
  const std::size_t whole = n - n % Batch::size;
  const float shift = in[0];
  const Batch shift_lanes(shift);
  Batch lanes(0.0f);
  for (std::size_t i = 0; i < whole; i += Batch::size) lanes = lanes + (Batch::load_unaligned(in + i) - shift_lanes);
  float sum = simd::reduce_add(lanes);
  for (std::size_t i = whole; i < n; ++i) sum += in[i] - shift;
  const float offset = sum / static_cast<float>(n);  // mean - shift

  const Batch offset_lanes(offset);
  lanes = Batch(0.0f);
  for (std::size_t i = 0; i < whole; i += Batch::size) {
    const Batch deviation = (Batch::load_unaligned(in + i) - shift_lanes) - offset_lanes;
    lanes = simd::fma(deviation, deviation, lanes);
  }
  float squares = simd::reduce_add(lanes);
  for (std::size_t i = whole; i < n; ++i) squares += ((in[i] - shift) - offset) * ((in[i] - shift) - offset);
  const float inverse_std = 1.0f / std::sqrt(squares / static_cast<float>(n) + epsilon);

  const Batch scale_lanes(inverse_std);
  for (std::size_t i = 0; i < whole; i += Batch::size) {
    const Batch normalised = ((Batch::load_unaligned(in + i) - shift_lanes) - offset_lanes) * scale_lanes;
    const Batch scaled = gamma ? normalised * Batch::load_unaligned(gamma + i) : normalised;
    (beta ? scaled + Batch::load_unaligned(beta + i) : scaled).store_unaligned(out + i);
  }
  for (std::size_t i = whole; i < n; ++i)
    out[i] = ((in[i] - shift) - offset) * inverse_std * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
#else
  reference::layer_norm(in, gamma, beta, epsilon, out, n);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
