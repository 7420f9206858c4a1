// Matrix-vector product with bias and activation: the dense layer of an MLP (torch.nn.Linear).
// output[r] = act(sum_c weight[r * cols + c] * input[c] + (bias ? bias[r] : 0)).
// Invariants: weight is row-major [rows, cols] (PyTorch's [out_features, in_features]); bias has rows
// floats or is nullptr; input must not alias output. Any alignment. Never allocates.
// Maths: y = x W^T + b, then an element-wise activation (ops/activation.hpp).
// Rounding vs the reference: the SIMD path works on Batch::size rows at once, sharing each input load
// across them; every row keeps one accumulator per lane (lane l sums columns l, l + size, ...) with fused
// multiply-add, then one transpose-and-add tree sums the lanes of all rows together. The reference sums
// each row sequentially. Both add the bias after the products; differences are float32 summation error.
#pragma once

#include <cstddef>
#include <utility>

#include "reclite/core/config.hpp"
#include "reclite/ops/activation.hpp"
#include "reclite/ops/dot.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
inline void gemv(const float* weight, const float* input, const float* bias, float* output, std::size_t rows,
                 std::size_t cols, Activation activation = Activation::none) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = weight + r * cols;
    float sum = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) sum += row[c] * input[c];
    output[r] = sum + (bias ? bias[r] : 0.0f);
  }
  reference::apply_activation(activation, output, output, rows);  // qualified: ADL also finds ops::
}
}  // namespace reference

#if RECLITE_HAS_SIMD
namespace detail {
// Batch::size consecutive rows starting at `block`; output gets the pre-activation sums plus bias.
// The fold expressions unroll over the rows with constant indices, so the accumulators live in registers.
template <std::size_t... Row>
inline void gemv_row_block(const float* block, const float* input, const float* bias, float* output,
                           std::size_t cols, std::index_sequence<Row...>) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  Batch sums[lanes] = {(static_cast<void>(Row), Batch(0.0f))...};
  std::size_t c = 0;
  for (; c < cols - cols % lanes; c += lanes) {
    const Batch x = Batch::load_unaligned(input + c);
    ((sums[Row] = simd::fma(Batch::load_unaligned(block + Row * cols + c), x, sums[Row])), ...);
  }
  alignas(64) float tails[lanes];
  for (std::size_t row = 0; row < lanes; ++row) {
    float tail = 0.0f;
    for (std::size_t t = c; t < cols; ++t) tail += block[row * cols + t] * input[t];
    tails[row] = tail + (bias ? bias[row] : 0.0f);
  }
  (simd::reduce_add_rows(sums) + Batch::load_aligned(tails)).store_unaligned(output);
}
}  // namespace detail
#endif

// output = act(weight · input + bias), weight row-major [rows, cols]; bias may be nullptr.
inline void gemv(const float* weight, const float* input, const float* bias, float* output, std::size_t rows,
                 std::size_t cols, Activation activation = Activation::none) noexcept {
#if RECLITE_HAS_SIMD
  constexpr std::size_t lanes = simd::Batch<float>::size;
  std::size_t r = 0;
  for (; r < rows - rows % lanes; r += lanes)
    detail::gemv_row_block(weight + r * cols, input, bias ? bias + r : nullptr, output + r, cols,
                           std::make_index_sequence<lanes>{});
  for (; r < rows; ++r) output[r] = dot(weight + r * cols, input, cols) + (bias ? bias[r] : 0.0f);
  apply_activation(activation, output, output, rows);
#else
  reference::gemv(weight, input, bias, output, rows, cols, activation);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
