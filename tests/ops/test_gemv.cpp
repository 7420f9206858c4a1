#include "reclite/ops/gemv.hpp"

#include <cmath>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {
// Double-precision y = W x + b before the activation, and the magnitude sum |W x| + |b| per row.
void exact_gemv(const float* weight, const float* input, const float* bias, std::size_t rows, std::size_t cols,
                std::vector<double>& exact, std::vector<double>& magnitude) {
  exact.assign(rows, 0.0);
  magnitude.assign(rows, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const double product = static_cast<double>(weight[r * cols + c]) * input[c];
      exact[r] += product;
      magnitude[r] += std::fabs(product);
    }
    if (bias) {
      exact[r] += bias[r];
      magnitude[r] += std::fabs(bias[r]);
    }
  }
}
}  // namespace

TEST_CASE("ops/gemv: simd and reference match double precision on awkward shapes") {
  for (std::size_t rows : test::awkward_sizes()) {
    for (std::size_t cols : test::awkward_sizes()) {
      for (bool with_bias : {true, false}) {
        CAPTURE(rows);
        CAPTURE(cols);
        CAPTURE(with_bias);
        test::UnalignedFloats weight(rows * cols, 41), input(cols, 42), bias(rows, 43);
        const float* bias_data = with_bias ? bias.data() : nullptr;
        std::vector<double> exact, magnitude;
        exact_gemv(weight.data(), input.data(), bias_data, rows, cols, exact, magnitude);
        std::vector<float> got = test::nan_filled(rows), want = test::nan_filled(rows);
        ops::gemv(weight.data(), input.data(), bias_data, got.data(), rows, cols);
        ops::reference::gemv(weight.data(), input.data(), bias_data, want.data(), rows, cols);
        for (std::size_t r = 0; r < rows; ++r) {
          CAPTURE(r);
          CHECK_SUM_CLOSE(want[r], exact[r], magnitude[r], test::tolerance::simd_vs_reference);
          CHECK_SUM_CLOSE(got[r], exact[r], magnitude[r], test::tolerance::simd_vs_reference);
        }
        CHECK(std::isnan(got[rows]));
        CHECK(std::isnan(want[rows]));
      }
    }
  }
}

TEST_CASE("ops/gemv: activation is applied after the bias") {
  const std::size_t rows = 67, cols = 45;
  test::UnalignedFloats weight(rows * cols, 44), input(cols, 45), bias(rows, 46);
  std::vector<float> linear = test::nan_filled(rows);
  ops::gemv(weight.data(), input.data(), bias.data(), linear.data(), rows, cols);
  for (ops::Activation activation : {ops::Activation::relu, ops::Activation::tanh, ops::Activation::sigmoid,
                                     ops::Activation::gelu_erf}) {
    CAPTURE(static_cast<int>(activation));
    std::vector<float> want = test::nan_filled(rows), got = test::nan_filled(rows),
                       reference_got = test::nan_filled(rows);
    ops::apply_activation(activation, linear.data(), want.data(), rows);
    ops::gemv(weight.data(), input.data(), bias.data(), got.data(), rows, cols, activation);
    ops::reference::gemv(weight.data(), input.data(), bias.data(), reference_got.data(), rows, cols, activation);
    test::check_close(got, want, rows, test::tolerance::exact);
    test::check_close(reference_got, want, rows, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[rows]));
  }
}

TEST_CASE("ops/gemv: relu zeroes negative rows") {
  // Row r of the weight is all (r % 2 ? -1 : 1), input all ones: negative rows must come out exactly 0.
  const std::size_t rows = 33, cols = 19;
  std::vector<float> weight(rows * cols), input(cols, 1.0f);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) weight[r * cols + c] = r % 2 ? -1.0f : 1.0f;
  std::vector<float> got = test::nan_filled(rows);
  ops::gemv(weight.data(), input.data(), nullptr, got.data(), rows, cols, ops::Activation::relu);
  for (std::size_t r = 0; r < rows; ++r) CHECK(got[r] == (r % 2 ? 0.0f : 19.0f));
}

TEST_CASE("ops/gemv: a three layer mlp matches double precision within the pytorch promise") {
  // The DSSM tower shape 192 -> 256 -> 128 -> 64 with ReLU; weights scaled like nn.Linear's init.
  const std::size_t sizes[] = {192, 256, 128, 64};
  std::vector<float> activations = test::random_floats(192, 47);
  std::vector<double> exact(activations.begin(), activations.end());
  for (int layer = 0; layer < 3; ++layer) {
    const std::size_t cols = sizes[layer], rows = sizes[layer + 1];
    const float bound = 1.0f / std::sqrt(static_cast<float>(cols));
    std::vector<float> weight = test::random_floats(rows * cols, 48 + layer, -bound, bound);
    std::vector<float> bias = test::random_floats(rows, 58 + layer, -bound, bound);
    std::vector<float> next = test::nan_filled(rows);
    ops::gemv(weight.data(), activations.data(), bias.data(), next.data(), rows, cols, ops::Activation::relu);
    std::vector<double> exact_next(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      double sum = bias[r];
      for (std::size_t c = 0; c < cols; ++c) sum += static_cast<double>(weight[r * cols + c]) * exact[c];
      exact_next[r] = sum < 0 ? 0 : sum;
    }
    CHECK(std::isnan(next[rows]));
    next.pop_back();
    activations = next;
    exact = exact_next;
  }
  test::check_close(activations, exact, 64, test::tolerance::pytorch_parity);
}

TEST_CASE("ops/gemv: infinity and NaN in the input reach every row") {
  const std::size_t rows = 21, cols = 37;
  test::UnalignedFloats weight(rows * cols, 49, 0.5f, 1.0f), input(cols, 50);
  input[cols - 1] = std::numeric_limits<float>::quiet_NaN();  // lands in the column tail on every ISA
  std::vector<float> got = test::nan_filled(rows);
  ops::gemv(weight.data(), input.data(), nullptr, got.data(), rows, cols);
  for (std::size_t r = 0; r < rows; ++r) CHECK(std::isnan(got[r]));
  input[cols - 1] = 0.0f;
  input[0] = std::numeric_limits<float>::infinity();  // positive weights: +inf in every row
  ops::gemv(weight.data(), input.data(), nullptr, got.data(), rows, cols);
  for (std::size_t r = 0; r < rows; ++r) CHECK(got[r] == std::numeric_limits<float>::infinity());
}
