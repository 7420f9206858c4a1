// Element-wise activations: relu, tanh, sigmoid and GELU (erf form, torch.nn.GELU's default).
// Invariants: in and out hold n floats, any alignment; in == out is allowed (each element is read before
// it is written and nothing else is read). Never allocates.
// Maths: relu = max(x, 0); sigmoid = 1 / (1 + e^-x), evaluated as e^-|x| based so it never forms inf
// (|x| = 100 or inf gives exactly 0 or 1); gelu_erf = x * 0.5 * (1 + erf(x / sqrt 2)) as in
// torch.nn.functional.gelu(approximate='none'), with gelu(-inf) = 0 (the limit) instead of -inf * 0 = NaN.
// Rounding vs the reference: relu is exact; the SIMD path of tanh, sigmoid and gelu uses xsimd's
// polynomials where the reference calls libm (std::exp, std::tanh, std::erf); they agree within
// about 2e-6 absolute plus relative. NaN propagates through every activation (relu(NaN) is NaN).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

// Values equal reclite.fbs.Activation in schemas/model.fbs.
enum class Activation : std::uint8_t { none = 0, relu = 1, tanh = 2, sigmoid = 3, gelu_erf = 4 };

namespace detail {
inline float relu_one(float x) noexcept { return x < 0.0f ? 0.0f : x; }  // keeps NaN (NaN < 0 is false)

inline float sigmoid_one(float x) noexcept {
  float decay = std::exp(-std::fabs(x));  // in (0, 1]: never overflows
  float positive = 1.0f / (1.0f + decay);
  return x >= 0.0f ? positive : decay * positive;
}

inline float gelu_erf_one(float x) noexcept {
  if (x == -std::numeric_limits<float>::infinity()) return 0.0f;
  return x * 0.5f * (1.0f + std::erf(x * 0.70710678118654752440f));
}

#if RECLITE_HAS_SIMD
// Applies batch_function to whole batches and scalar_function to the tail; in == out is fine.
template <class BatchFunction, class ScalarFunction>
inline void map_elements(const float* in, float* out, std::size_t n, BatchFunction batch_function,
                         ScalarFunction scalar_function) noexcept {
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    batch_function(Batch::load_unaligned(in + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = scalar_function(in[i]);
}

inline simd::Batch<float> relu_batch(const simd::Batch<float>& x) noexcept {
  // select keeps NaN lanes, where max(x, 0) on x86 would turn NaN into 0.
  return simd::select(x < simd::Batch<float>(0.0f), simd::Batch<float>(0.0f), x);
}

inline simd::Batch<float> sigmoid_batch(const simd::Batch<float>& x) noexcept {
  using Batch = simd::Batch<float>;
  Batch decay = simd::exp(-simd::abs(x));
  Batch positive = Batch(1.0f) / (Batch(1.0f) + decay);
  return simd::select(x >= Batch(0.0f), positive, decay * positive);
}

inline simd::Batch<float> gelu_erf_batch(const simd::Batch<float>& x) noexcept {
  using Batch = simd::Batch<float>;
  Batch value = x * Batch(0.5f) * (Batch(1.0f) + simd::erf(x * Batch(0.70710678118654752440f)));
  return simd::select(x == Batch(-std::numeric_limits<float>::infinity()), Batch(0.0f), value);
}
#endif
}  // namespace detail

namespace reference {
inline void relu(const float* in, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::relu_one(in[i]);
}
inline void tanh(const float* in, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
}
inline void sigmoid(const float* in, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::sigmoid_one(in[i]);
}
inline void gelu_erf(const float* in, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::gelu_erf_one(in[i]);
}
inline void apply_activation(Activation activation, const float* in, float* out, std::size_t n) noexcept {
  switch (activation) {
    case Activation::relu: relu(in, out, n); return;
    case Activation::tanh: tanh(in, out, n); return;
    case Activation::sigmoid: sigmoid(in, out, n); return;
    case Activation::gelu_erf: gelu_erf(in, out, n); return;
    case Activation::none: break;
  }
  if (in != out)
    for (std::size_t i = 0; i < n; ++i) out[i] = in[i];
}
}  // namespace reference

// out[i] = max(in[i], 0).
inline void relu(const float* in, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  detail::map_elements(in, out, n, detail::relu_batch, detail::relu_one);
#else
  reference::relu(in, out, n);
#endif
}

// out[i] = tanh(in[i]).
inline void tanh(const float* in, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  detail::map_elements(
      in, out, n, [](const simd::Batch<float>& x) { return simd::tanh(x); },
      [](float x) { return std::tanh(x); });
#else
  reference::tanh(in, out, n);
#endif
}

// out[i] = 1 / (1 + exp(-in[i])), without overflow for any input.
inline void sigmoid(const float* in, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  detail::map_elements(in, out, n, detail::sigmoid_batch, detail::sigmoid_one);
#else
  reference::sigmoid(in, out, n);
#endif
}

// out[i] = in[i] * 0.5 * (1 + erf(in[i] / sqrt 2)), torch's exact GELU.
inline void gelu_erf(const float* in, float* out, std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  detail::map_elements(in, out, n, detail::gelu_erf_batch, detail::gelu_erf_one);
#else
  reference::gelu_erf(in, out, n);
#endif
}

// Applies `activation` element-wise; Activation::none copies (or does nothing when in == out).
inline void apply_activation(Activation activation, const float* in, float* out, std::size_t n) noexcept {
  switch (activation) {
    case Activation::relu: relu(in, out, n); return;
    case Activation::tanh: tanh(in, out, n); return;
    case Activation::sigmoid: sigmoid(in, out, n); return;
    case Activation::gelu_erf: gelu_erf(in, out, n); return;
    case Activation::none: break;
  }
  if (in != out)
    for (std::size_t i = 0; i < n; ++i) out[i] = in[i];
}

}  // namespace ops
RECLITE_END_NAMESPACE
