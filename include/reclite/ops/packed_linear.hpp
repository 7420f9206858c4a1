// A dense layer (torch.nn.Linear) on weights packed once: output[i, :] = act(input[i, :] · W^T + bias) for
// W [outputs, inputs] row-major, for any number of input rows (1 for an incremental step, ~50 for a window).
// PackedLinear copies W once (at model load) into column panels: panel p holds outputs [p * width, (p + 1) * width)
// as `inputs` rows of `width` floats (W^T, zero-padded past the last output), 64-byte aligned, immutable after
// construction, so one PackedLinear is shared read-only between threads. width = panel_batches * Batch::size (64
// floats on AVX-512, 16 on AVX2, 8 on SSE/NEON, 8 in scalar builds); the bias is stored padded the same way.
// Memory: ceil(outputs / width) * width * (inputs + 1) floats.
// The kernel broadcasts input[i, t] and fuses it into one panel row, `rows` input rows at a time (6 x 4 batches of
// accumulators on AVX-512): the inputs are the broadcast operand, outputs run along the vector lanes, no horizontal
// sums, so m = 1 and m = 50 use the same code. Bias and activation are applied to the accumulators before the
// store (the epilogue; tanh, which no dense layer here fuses, after it).
// Measured (bench_ops sasrec_linear, Zen 4 AVX-512, loaded machine): 50 x 64 -> 64 5.6x faster than gemm_nt,
// 50 x 64 -> 256 with GELU 2.8x, 50 x 256 -> 64 2.6x; one row 1.1-2x faster than gemv. Strides: input row i at input + i * input_stride, output row i at output + i * output_stride.
// Invariants: output must not overlap input or the weights; input and output any alignment. Never allocates.
// Rounding vs the reference (reference::linear, on the unpacked W): the sum over inputs runs in the same sequential
// order, with fused multiply-add, then the bias is added, as the reference does; the activation uses the SIMD
// polynomials of ops/activation.hpp (within its transcendental tolerance of libm).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>

#include "reclite/core/config.hpp"
#include "reclite/ops/activation.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
// output[i, j] = act(sum_t input[i, t] * weight[j, t] + bias[j]), summed in order t = 0, 1, ...
inline void linear(const float* input, std::size_t input_stride, const float* weight, const float* bias, float* output,
                   std::size_t output_stride, std::size_t rows, std::size_t outputs, std::size_t inputs,
                   Activation activation = Activation::none) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    float* row = output + i * output_stride;
    for (std::size_t j = 0; j < outputs; ++j) {
      float sum = 0.0f;
      for (std::size_t t = 0; t < inputs; ++t) sum += input[i * input_stride + t] * weight[j * inputs + t];
      row[j] = sum + (bias ? bias[j] : 0.0f);
    }
    reference::apply_activation(activation, row, row, outputs);  // qualified: ADL also finds ops::
  }
}
}  // namespace reference

namespace detail {
#if RECLITE_HAS_SIMD
constexpr std::size_t linear_lanes = simd::Batch<float>::size;
// AVX-512 and wider: 6 rows x 4 batches = 24 accumulators + 4 weight batches + 1 broadcast of 32 registers.
// Narrower (AVX2, SSE, NEON): 4 rows x 2 batches = 8 accumulators, within 16 registers.
constexpr std::size_t linear_panel_batches = linear_lanes >= 16 ? 4 : 2;
constexpr std::size_t linear_block_rows = linear_lanes >= 16 ? 6 : 4;
#else
constexpr std::size_t linear_lanes = 1;
constexpr std::size_t linear_panel_batches = 8;
constexpr std::size_t linear_block_rows = 1;
#endif
constexpr std::size_t linear_panel_width = linear_lanes * linear_panel_batches;

struct AlignedFloatsDelete {
  void operator()(float* floats) const noexcept { ::operator delete[](floats, std::align_val_t(64)); }
};
}  // namespace detail

class PackedLinear {
 public:
  static constexpr std::size_t panel_width = detail::linear_panel_width;

  PackedLinear() = default;

  // weight [outputs, inputs] row-major (nn.Linear); bias: outputs floats or nullptr. scale multiplies the weight
  // and the bias (attention folds 1 / sqrt(head size) into its query projection this way); 1 copies them.
  PackedLinear(const float* weight, const float* bias, std::size_t outputs, std::size_t inputs, float scale = 1.0f)
      : outputs_(outputs), inputs_(inputs), panels_((outputs + panel_width - 1) / panel_width), has_bias_(bias != nullptr) {
    const std::size_t padded = panels_ * panel_width;
    const std::size_t floats = padded * inputs + (has_bias_ ? padded : 0);
    storage_.reset(new (std::align_val_t(64)) float[std::max<std::size_t>(floats, 1)]);
    float* packed = storage_.get();
    for (std::size_t panel = 0; panel < panels_; ++panel)
      for (std::size_t t = 0; t < inputs; ++t)
        for (std::size_t c = 0; c < panel_width; ++c) {
          const std::size_t j = panel * panel_width + c;
          packed[(panel * inputs + t) * panel_width + c] = j < outputs ? weight[j * inputs + t] * scale : 0.0f;
        }
    if (has_bias_) {
      float* padded_bias = packed + padded * inputs;
      for (std::size_t j = 0; j < padded; ++j) padded_bias[j] = j < outputs ? bias[j] * scale : 0.0f;
    }
  }

  std::size_t outputs() const noexcept { return outputs_; }
  std::size_t inputs() const noexcept { return inputs_; }
  bool empty() const noexcept { return storage_ == nullptr; }
  std::size_t panel_count() const noexcept { return panels_; }
  // Panel p: inputs() rows of panel_width floats, 64-byte aligned.
  const float* panel(std::size_t p) const noexcept { return storage_.get() + p * inputs_ * panel_width; }
  // panel_count() * panel_width floats (zeros past outputs()), or nullptr without a bias.
  const float* bias() const noexcept { return has_bias_ ? storage_.get() + panels_ * panel_width * inputs_ : nullptr; }
  std::size_t bytes() const noexcept {
    return panels_ * panel_width * (inputs_ + (has_bias_ ? 1 : 0)) * sizeof(float);
  }

 private:
  std::size_t outputs_ = 0;
  std::size_t inputs_ = 0;
  std::size_t panels_ = 0;
  bool has_bias_ = false;
  std::unique_ptr<float[], detail::AlignedFloatsDelete> storage_;
};

#if RECLITE_HAS_SIMD
namespace detail {
template <Activation activation>
inline simd::Batch<float> activate(const simd::Batch<float>& x) noexcept {
  if constexpr (activation == Activation::relu) return relu_batch(x);
  else if constexpr (activation == Activation::sigmoid) return sigmoid_batch(x);
  else if constexpr (activation == Activation::gelu_erf) return gelu_erf_batch(x);
  else return x;
}

// The epilogue of batch b of one output row's panel: bias (or none), activation, then the store of the lanes
// below `columns` (the panel's valid outputs). Always inlined, as the kernels' own code was: an out-of-line copy
// instantiates xsimd's erf out of line too, where GCC 12 reports its intrinsics as maybe uninitialised (see
// ops/simd.hpp).
template <Activation activation>
[[gnu::always_inline]] inline void finish_batch(simd::Batch<float> value, const float* bias, float* row, std::size_t b,
                         std::size_t columns) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  if (bias != nullptr) value = value + Batch::load_aligned(bias + b * lanes);
  value = activate<activation>(value);
  float* destination = row + b * lanes;
  if ((b + 1) * lanes <= columns) {
    value.store_unaligned(destination);
  } else if (b * lanes < columns) {
    alignas(64) float lanes_out[lanes];
    value.store_aligned(lanes_out);
    std::copy(lanes_out, lanes_out + (columns - b * lanes), destination);
  }
}

// `rows` input rows times one panel; columns = valid outputs of this panel (<= panel width).
template <std::size_t rows, Activation activation>
inline void linear_block(const float* input, std::size_t input_stride, const float* panel, const float* bias,
                         float* output, std::size_t output_stride, std::size_t inputs, std::size_t columns) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  constexpr std::size_t batches = linear_panel_batches;
  constexpr std::size_t width = linear_panel_width;
  Batch sums[rows * batches];
#pragma GCC unroll 32
  for (std::size_t s = 0; s < rows * batches; ++s) sums[s] = Batch(0.0f);
  for (std::size_t t = 0; t < inputs; ++t) {
    const float* weights = panel + t * width;
    Batch w[batches];
#pragma GCC unroll 8
    for (std::size_t b = 0; b < batches; ++b) w[b] = Batch::load_aligned(weights + b * lanes);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < rows; ++r) {
      const Batch x(input[r * input_stride + t]);
#pragma GCC unroll 8
      for (std::size_t b = 0; b < batches; ++b) sums[r * batches + b] = simd::fma(x, w[b], sums[r * batches + b]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < rows; ++r)
#pragma GCC unroll 8
    for (std::size_t b = 0; b < batches; ++b)
      finish_batch<activation>(sums[r * batches + b], bias, output + r * output_stride, b, columns);
}

// One input row times `panels` panels at once (of one layer, or of several layers reading the same input): panel q
// at panel_list[q], its bias at bias_list[q] (or nullptr), its output at output_list[q] with column_list[q] valid
// outputs. One row uses each weight once, so its speed is the weight stream's: several panels keep several streams
// and panels * batches accumulator chains in flight, where one panel at a time waits on its 4 chains. Per output
// the arithmetic of linear_block<1>: the same sequential sum over inputs, then bias, then activation.
template <std::size_t panels, Activation activation>
inline void linear_row_panels(const float* input, const float* const* panel_list, const float* const* bias_list,
                              float* const* output_list, const std::size_t* column_list, std::size_t inputs) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  constexpr std::size_t batches = linear_panel_batches;
  constexpr std::size_t width = linear_panel_width;
  Batch sums[panels * batches];
#pragma GCC unroll 32
  for (std::size_t s = 0; s < panels * batches; ++s) sums[s] = Batch(0.0f);
  for (std::size_t t = 0; t < inputs; ++t) {
    const Batch x(input[t]);
#pragma GCC unroll 8
    for (std::size_t q = 0; q < panels; ++q) {
      const float* weights = panel_list[q] + t * width;
#pragma GCC unroll 8
      for (std::size_t b = 0; b < batches; ++b)
        sums[q * batches + b] = simd::fma(x, Batch::load_aligned(weights + b * lanes), sums[q * batches + b]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t q = 0; q < panels; ++q)
#pragma GCC unroll 8
    for (std::size_t b = 0; b < batches; ++b)
      finish_batch<activation>(sums[q * batches + b], bias_list[q], output_list[q], b, column_list[q]);
}

// Panels at most: 4 x 4 batches = 16 accumulators on AVX-512, 2 x 2 on narrower vectors.
constexpr std::size_t linear_row_panel_group = linear_lanes >= 16 ? 4 : 2;

template <Activation activation, std::size_t panels = linear_row_panel_group>
inline void linear_row_panel_tail(std::size_t remaining, const float* input, const float* const* panel_list,
                                  const float* const* bias_list, float* const* output_list,
                                  const std::size_t* column_list, std::size_t inputs) noexcept {
  if constexpr (panels > 0) {
    if (remaining == panels)
      linear_row_panels<panels, activation>(input, panel_list, bias_list, output_list, column_list, inputs);
    else
      linear_row_panel_tail<activation, panels - 1>(remaining, input, panel_list, bias_list, output_list, column_list,
                                                    inputs);
  }
}

// One input row through every panel of `count` layers with the same inputs(), linear_row_panel_group panels at a
// time; outputs[l] receives layer l's outputs.
template <Activation activation>
inline void linear_row_layers(const float* input, const PackedLinear* const* layers, float* const* outputs,
                              std::size_t count) noexcept {
  constexpr std::size_t group = linear_row_panel_group;
  constexpr std::size_t width = linear_panel_width;
  const float* panel_list[group];
  const float* bias_list[group];
  float* output_list[group];
  std::size_t column_list[group];
  std::size_t filled = 0;
  for (std::size_t l = 0; l < count; ++l) {
    const PackedLinear& layer = *layers[l];
    for (std::size_t p = 0; p < layer.panel_count(); ++p) {
      panel_list[filled] = layer.panel(p);
      bias_list[filled] = layer.bias() != nullptr ? layer.bias() + p * width : nullptr;
      output_list[filled] = outputs[l] + p * width;
      column_list[filled] = std::min(width, layer.outputs() - p * width);
      if (++filled == group) {
        linear_row_panels<group, activation>(input, panel_list, bias_list, output_list, column_list, layer.inputs());
        filled = 0;
      }
    }
  }
  if (filled > 0)
    linear_row_panel_tail<activation, group - 1>(filled, input, panel_list, bias_list, output_list, column_list,
                                                 layers[0]->inputs());
}

// The last rows % linear_block_rows rows, with a block of exactly that many.
template <std::size_t rows, Activation activation>
inline void linear_remainder(std::size_t remaining, const float* input, std::size_t input_stride, const float* panel,
                             const float* bias, float* output, std::size_t output_stride, std::size_t inputs,
                             std::size_t columns) noexcept {
  if constexpr (rows > 0) {
    if (remaining == rows)
      linear_block<rows, activation>(input, input_stride, panel, bias, output, output_stride, inputs, columns);
    else
      linear_remainder<rows - 1, activation>(remaining, input, input_stride, panel, bias, output, output_stride,
                                             inputs, columns);
  }
}

// tanh is not fused: xsimd's tanh, instantiated out of line from this kernel, trips GCC 12's
// -Wmaybe-uninitialized inside its own intrinsics (PR105593, see ops/simd.hpp); linear() applies it per row.

// Panel by panel (a panel stays in L1 while the input rows stream past it).
template <Activation activation>
inline void linear_panels(const float* input, std::size_t input_stride, const PackedLinear& layer, float* output,
                          std::size_t output_stride, std::size_t rows) noexcept {
  constexpr std::size_t block_rows = linear_block_rows;
  constexpr std::size_t width = linear_panel_width;
  const std::size_t inputs = layer.inputs();
  if (rows == 1 && layer.panel_count() > 1) {
    const PackedLinear* layers[] = {&layer};
    float* outputs[] = {output};
    linear_row_layers<activation>(input, layers, outputs, 1);
    return;
  }
  const std::size_t blocked = rows - rows % block_rows;
  for (std::size_t p = 0; p < layer.panel_count(); ++p) {
    const float* panel = layer.panel(p);
    const float* bias = layer.bias() != nullptr ? layer.bias() + p * width : nullptr;
    const std::size_t columns = std::min(width, layer.outputs() - p * width);
    float* panel_output = output + p * width;
    for (std::size_t i = 0; i < blocked; i += block_rows)
      linear_block<block_rows, activation>(input + i * input_stride, input_stride, panel, bias,
                                           panel_output + i * output_stride, output_stride, inputs, columns);
    if (blocked < rows)
      linear_remainder<block_rows - 1, activation>(rows - blocked, input + blocked * input_stride, input_stride, panel,
                                                   bias, panel_output + blocked * output_stride, output_stride, inputs,
                                                   columns);
  }
}
}  // namespace detail
#endif

// output[i, :] = act(input[i, :] · W^T + bias) for i < rows (see the header comment for strides and layout).
inline void linear(const float* input, std::size_t input_stride, const PackedLinear& layer, float* output,
                   std::size_t output_stride, std::size_t rows, Activation activation = Activation::none) noexcept {
#if RECLITE_HAS_SIMD
  switch (activation) {
    case Activation::relu:
      detail::linear_panels<Activation::relu>(input, input_stride, layer, output, output_stride, rows);
      return;
    case Activation::tanh:
      detail::linear_panels<Activation::none>(input, input_stride, layer, output, output_stride, rows);
      for (std::size_t i = 0; i < rows; ++i) tanh(output + i * output_stride, output + i * output_stride, layer.outputs());
      return;
    case Activation::sigmoid:
      detail::linear_panels<Activation::sigmoid>(input, input_stride, layer, output, output_stride, rows);
      return;
    case Activation::gelu_erf:
      detail::linear_panels<Activation::gelu_erf>(input, input_stride, layer, output, output_stride, rows);
      return;
    case Activation::none: break;
  }
  detail::linear_panels<Activation::none>(input, input_stride, layer, output, output_stride, rows);
#else
  // Scalar builds: the reference's order of operations, reading the packed panels.
  constexpr std::size_t width = PackedLinear::panel_width;
  const std::size_t inputs = layer.inputs();
  for (std::size_t i = 0; i < rows; ++i) {
    const float* row_input = input + i * input_stride;
    float* row = output + i * output_stride;
    for (std::size_t j = 0; j < layer.outputs(); ++j) {
      const float* panel = layer.panel(j / width) + j % width;
      float sum = 0.0f;
      for (std::size_t t = 0; t < inputs; ++t) sum += row_input[t] * panel[t * width];
      row[j] = sum + (layer.bias() != nullptr ? layer.bias()[j] : 0.0f);
    }
    reference::apply_activation(activation, row, row, layer.outputs());
  }
#endif
}

// One input row through `count` layers that read it (all with the same inputs()): outputs[l] = act(input ·
// W_l^T + bias_l), e.g. the key, value and query projections of one new position. Equal bit for bit to `count`
// calls of linear(input, 0, *layers[l], outputs[l], 0, 1, activation), and faster: the layers' panels stream
// together (see detail::linear_row_panels).
inline void linear_one_row(const float* input, const PackedLinear* const* layers, float* const* outputs,
                           std::size_t count, Activation activation = Activation::none) noexcept {
#if RECLITE_HAS_SIMD
  switch (activation) {
    case Activation::relu: detail::linear_row_layers<Activation::relu>(input, layers, outputs, count); return;
    case Activation::sigmoid: detail::linear_row_layers<Activation::sigmoid>(input, layers, outputs, count); return;
    case Activation::gelu_erf: detail::linear_row_layers<Activation::gelu_erf>(input, layers, outputs, count); return;
    case Activation::tanh:
      detail::linear_row_layers<Activation::none>(input, layers, outputs, count);
      for (std::size_t l = 0; l < count; ++l) tanh(outputs[l], outputs[l], layers[l]->outputs());
      return;
    case Activation::none: break;
  }
  detail::linear_row_layers<Activation::none>(input, layers, outputs, count);
#else
  for (std::size_t l = 0; l < count; ++l) linear(input, 0, *layers[l], outputs[l], 0, 1, activation);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
