#include "reclite/ops/packed_linear.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {
// Around every edge: rows per block (1, 4, 6), lanes (4, 8, 16), panel widths (8, 16, 64), SASRec's 50/64/256.
const std::size_t row_sizes[] = {1, 2, 3, 5, 6, 7, 13, 17, 50};
const std::size_t output_sizes[] = {1, 3, 8, 15, 16, 17, 63, 64, 65, 192, 257};
const std::size_t input_sizes[] = {1, 3, 15, 17, 64, 257};

// Double-precision act(x · W^T + b) for one output, with the sum of |terms| for the tolerance.
struct Exact {
  double value;
  double magnitude;
};
Exact exact_output(const float* input, const float* weight_row, const float* bias, std::size_t j, std::size_t inputs,
                   float scale) {
  double value = bias != nullptr ? static_cast<double>(bias[j] * scale) : 0.0;
  double magnitude = std::fabs(value);
  for (std::size_t t = 0; t < inputs; ++t) {
    const double term = static_cast<double>(input[t]) * static_cast<double>(weight_row[t] * scale);
    value += term;
    magnitude += std::fabs(term);
  }
  return {value, magnitude};
}
}  // namespace

TEST_CASE("ops/packed_linear: matches the reference and double precision on awkward shapes, with and without bias") {
  for (std::size_t rows : row_sizes) {
    for (std::size_t outputs : output_sizes) {
      for (std::size_t inputs : input_sizes) {
        for (bool with_bias : {false, true}) {
          CAPTURE(rows);
          CAPTURE(outputs);
          CAPTURE(inputs);
          CAPTURE(with_bias);
          // Strided rows: input stride inputs + 3, output stride outputs + 2 (gaps must stay untouched).
          const std::size_t input_stride = inputs + 3, output_stride = outputs + 2;
          test::UnalignedFloats input(rows * input_stride, 71), weight(outputs * inputs, 72), bias(outputs, 73);
          const float* bias_data = with_bias ? bias.data() : nullptr;
          const ops::PackedLinear layer(weight.data(), bias_data, outputs, inputs);
          CHECK(layer.outputs() == outputs);
          CHECK(layer.inputs() == inputs);
          CHECK(reinterpret_cast<std::uintptr_t>(layer.panel(0)) % 64 == 0);
          std::vector<float> got = test::nan_filled(rows * output_stride),
                             want = test::nan_filled(rows * output_stride);
          ops::linear(input.data(), input_stride, layer, got.data(), output_stride, rows);
          ops::reference::linear(input.data(), input_stride, weight.data(), bias_data, want.data(), output_stride, rows,
                                 outputs, inputs);
          bool all_close = true;
          for (std::size_t i = 0; i < rows && all_close; ++i) {
            for (std::size_t j = 0; j < output_stride && all_close; ++j) {
              CAPTURE(i);
              CAPTURE(j);
              if (j >= outputs) {  // the gap between output rows
                all_close = std::isnan(got[i * output_stride + j]);
                CHECK(all_close);
                continue;
              }
              const Exact exact = exact_output(input.data() + i * input_stride, weight.data() + j * inputs, bias_data,
                                               j, inputs, 1.0f);
              all_close =
                  test::sum_is_close(got[i * output_stride + j], exact.value, exact.magnitude,
                                     test::tolerance::simd_vs_reference) &&
                  test::sum_is_close(want[i * output_stride + j], exact.value, exact.magnitude,
                                     test::tolerance::simd_vs_reference);
              CHECK(all_close);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("ops/packed_linear: fuses each activation after the bias, as the reference applies it") {
  for (std::size_t rows : {1, 7, 50}) {
    for (std::size_t outputs : {17, 64, 257}) {
      for (std::size_t inputs : {15, 64}) {
        const std::size_t input_stride = inputs, output_stride = outputs;
        test::UnalignedFloats input(rows * inputs, 74, -2.0f, 2.0f), weight(outputs * inputs, 75), bias(outputs, 76);
        const ops::PackedLinear layer(weight.data(), bias.data(), outputs, inputs);
        std::vector<float> plain = test::nan_filled(rows * outputs);
        ops::linear(input.data(), input_stride, layer, plain.data(), output_stride, rows);
        for (ops::Activation activation : {ops::Activation::relu, ops::Activation::tanh, ops::Activation::sigmoid,
                                           ops::Activation::gelu_erf}) {
          CAPTURE(rows);
          CAPTURE(outputs);
          CAPTURE(inputs);
          CAPTURE(static_cast<int>(activation));
          std::vector<float> got = test::nan_filled(rows * outputs + 1), want = test::nan_filled(rows * outputs + 1),
                             reference_got = test::nan_filled(rows * outputs + 1);
          ops::linear(input.data(), input_stride, layer, got.data(), output_stride, rows, activation);
          ops::reference::apply_activation(activation, plain.data(), want.data(), rows * outputs);
          test::check_close(got, want, rows * outputs, test::tolerance::transcendental);
          ops::reference::linear(input.data(), input_stride, weight.data(), bias.data(), reference_got.data(),
                                 output_stride, rows, outputs, inputs, activation);
          test::check_close(got, reference_got, rows * outputs, test::tolerance::simd_vs_reference);
          CHECK(std::isnan(got[rows * outputs]));
        }
      }
    }
  }
}

TEST_CASE("ops/packed_linear: scale multiplies weight and bias; the padded bias and size are reported") {
  const std::size_t rows = 5, outputs = 33, inputs = 19;
  test::UnalignedFloats input(rows * inputs, 77), weight(outputs * inputs, 78), bias(outputs, 79);
  const float scale = 0.17677669529663687f;  // 1 / sqrt(32), the attention logit scale
  const ops::PackedLinear layer(weight.data(), bias.data(), outputs, inputs, scale);
  // Room past the end: GCC 12 cannot see that the partial batch's full-width store is never taken (-Warray-bounds).
  std::vector<float> got = test::nan_filled(rows * outputs + 64);
  ops::linear(input.data(), inputs, layer, got.data(), outputs, rows);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < outputs; ++j) {
      const Exact exact = exact_output(input.data() + i * inputs, weight.data() + j * inputs, bias.data(), j, inputs, scale);
      CHECK_SUM_CLOSE(got[i * outputs + j], exact.value, exact.magnitude, test::tolerance::simd_vs_reference);
    }
  }
  const std::size_t width = ops::PackedLinear::panel_width;
  const std::size_t padded = (outputs + width - 1) / width * width;
  CHECK(layer.panel_count() == padded / width);
  CHECK(layer.bytes() == padded * (inputs + 1) * sizeof(float));
  for (std::size_t j = outputs; j < padded; ++j) CHECK(layer.bias()[j] == 0.0f);
  const ops::PackedLinear no_bias(weight.data(), nullptr, outputs, inputs);
  CHECK(no_bias.bias() == nullptr);
  CHECK(no_bias.bytes() == padded * inputs * sizeof(float));
  CHECK(ops::PackedLinear().empty());
}

TEST_CASE("ops/packed_linear: a moved layer keeps its panels; zero rows write nothing") {
  const std::size_t outputs = 20, inputs = 9;
  test::UnalignedFloats input(inputs, 80), weight(outputs * inputs, 81);
  ops::PackedLinear first(weight.data(), nullptr, outputs, inputs);
  const ops::PackedLinear moved(std::move(first));
  // got has room past the end, as in the scale test (GCC 12 -Warray-bounds).
  std::vector<float> got = test::nan_filled(outputs + 64), want = test::nan_filled(outputs);
  ops::linear(input.data(), inputs, moved, got.data(), outputs, 0);
  CHECK(std::isnan(got[0]));
  ops::linear(input.data(), inputs, moved, got.data(), outputs, 1);
  ops::reference::linear(input.data(), inputs, weight.data(), nullptr, want.data(), outputs, 1, outputs, inputs);
  test::check_close(got, want, outputs, test::tolerance::simd_vs_reference);
}

TEST_CASE("ops/packed_linear: NaN in one input row stays in that output row") {
  const std::size_t rows = 13, outputs = 70, inputs = 24;
  test::UnalignedFloats input(rows * inputs, 82), weight(outputs * inputs, 83), bias(outputs, 84);
  input[7 * inputs + inputs - 1] = std::numeric_limits<float>::quiet_NaN();
  const ops::PackedLinear layer(weight.data(), bias.data(), outputs, inputs);
  std::vector<float> got = test::nan_filled(rows * outputs);
  ops::linear(input.data(), inputs, layer, got.data(), outputs, rows, ops::Activation::relu);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < outputs; ++j) {
      CAPTURE(i);
      CAPTURE(j);
      CHECK(std::isnan(got[i * outputs + j]) == (i == 7));
    }
}

TEST_CASE("ops/packed_linear: one row gives the bits that row gets inside a block of rows") {
  // One row runs its panels together (several weight streams); a block of rows runs panel by panel. The
  // incremental SASRec step relies on both giving the same bits.
  for (std::size_t outputs : output_sizes) {
    for (std::size_t inputs : {1, 17, 64, 257}) {
      for (ops::Activation activation : {ops::Activation::none, ops::Activation::gelu_erf, ops::Activation::tanh}) {
        CAPTURE(outputs);
        CAPTURE(inputs);
        CAPTURE(static_cast<int>(activation));
        const std::size_t rows = 7;
        test::UnalignedFloats input(rows * inputs, 81), weight(outputs * inputs, 82), bias(outputs, 83);
        const ops::PackedLinear layer(weight.data(), bias.data(), outputs, inputs);
        std::vector<float> block = test::nan_filled(rows * outputs);
        ops::linear(input.data(), inputs, layer, block.data(), outputs, rows, activation);
        bool all_equal = true;
        for (std::size_t i = 0; i < rows && all_equal; ++i) {
          std::vector<float> single = test::nan_filled(outputs + 64);  // room GCC 12 cannot see is unused
          ops::linear(input.data() + i * inputs, inputs, layer, single.data(), outputs, 1, activation);
          CAPTURE(i);
          all_equal = std::memcmp(single.data(), block.data() + i * outputs, outputs * sizeof(float)) == 0 &&
                      std::isnan(single[outputs]);
          CHECK(all_equal);
        }
      }
    }
  }
}

TEST_CASE("ops/packed_linear: linear_one_row through several layers equals one linear call per layer") {
  // Layers of different widths (panels split across the group of panels run together), with and without bias.
  const std::size_t inputs_list[] = {1, 15, 64, 257};
  const std::size_t widths[][4] = {{64, 64, 64, 0}, {1, 65, 3, 0}, {257, 16, 0, 0}, {192, 0, 0, 0}, {8, 17, 63, 130}};
  for (std::size_t inputs : inputs_list) {
    for (const auto& width_set : widths) {
      for (ops::Activation activation : {ops::Activation::none, ops::Activation::relu, ops::Activation::sigmoid,
                                         ops::Activation::gelu_erf, ops::Activation::tanh}) {
        CAPTURE(inputs);
        CAPTURE(width_set[0]);
        CAPTURE(static_cast<int>(activation));
        std::vector<ops::PackedLinear> layers;
        std::vector<std::size_t> outputs;
        for (std::size_t l = 0; l < 4 && width_set[l] != 0; ++l) {
          test::UnalignedFloats weight(width_set[l] * inputs, static_cast<unsigned>(90 + l)),
              bias(width_set[l], static_cast<unsigned>(95 + l));
          layers.emplace_back(weight.data(), l % 2 == 0 ? bias.data() : nullptr, width_set[l], inputs);
          outputs.push_back(width_set[l]);
        }
        test::UnalignedFloats input(inputs, 89);
        std::vector<std::vector<float>> got, want;
        std::vector<const ops::PackedLinear*> layer_list;
        std::vector<float*> output_list;
        for (std::size_t l = 0; l < layers.size(); ++l) {
          got.push_back(test::nan_filled(outputs[l] + 1));
          want.push_back(test::nan_filled(outputs[l] + 1));
          ops::linear(input.data(), inputs, layers[l], want[l].data(), outputs[l], 1, activation);
        }
        for (std::size_t l = 0; l < layers.size(); ++l) {
          layer_list.push_back(&layers[l]);
          output_list.push_back(got[l].data());
        }
        ops::linear_one_row(input.data(), layer_list.data(), output_list.data(), layers.size(), activation);
        for (std::size_t l = 0; l < layers.size(); ++l) {
          CAPTURE(l);
          CHECK(std::memcmp(got[l].data(), want[l].data(), outputs[l] * sizeof(float)) == 0);
          CHECK(std::isnan(got[l][outputs[l]]));  // nothing past the layer's outputs
          // And the values are right, not merely equal to each other.
          CHECK(!std::isnan(got[l][0]));
        }
      }
    }
  }
}
