#include "reclite/ops/layer_norm.hpp"

#include <cmath>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {
// Double-precision torch.nn.LayerNorm of one row.
std::vector<double> exact_layer_norm(const float* in, const float* gamma, const float* beta, double epsilon,
                                     std::size_t n) {
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += in[i];
  mean /= static_cast<double>(n);
  double variance = 0;
  for (std::size_t i = 0; i < n; ++i) variance += (in[i] - mean) * (in[i] - mean);
  variance /= static_cast<double>(n);
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = (in[i] - mean) / std::sqrt(variance + epsilon) * (gamma ? gamma[i] : 1.0) + (beta ? beta[i] : 0.0);
  return out;
}
}  // namespace

TEST_CASE("ops/layer_norm: simd and reference match double precision on awkward sizes") {
  for (std::size_t n : test::awkward_sizes()) {
    for (bool affine : {true, false}) {
      CAPTURE(n);
      CAPTURE(affine);
      test::UnalignedFloats in(n, 91, -3.0f, 5.0f), gamma(n, 92, 0.5f, 1.5f), beta(n, 93);
      const float* gamma_data = affine ? gamma.data() : nullptr;
      const float* beta_data = affine ? beta.data() : nullptr;
      const std::vector<double> exact = exact_layer_norm(in.data(), gamma_data, beta_data, 1e-5, n);
      std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
      ops::layer_norm(in.data(), gamma_data, beta_data, 1e-5f, got.data(), n);
      ops::reference::layer_norm(in.data(), gamma_data, beta_data, 1e-5f, want.data(), n);
      test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
      test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
      CHECK(std::isnan(got[n]));
      CHECK(std::isnan(want[n]));
    }
  }
}

TEST_CASE("ops/layer_norm: in place gives the same result as out of place") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 94), gamma(n, 95), beta(n, 96);
    std::vector<float> separate = test::nan_filled(n);
    ops::layer_norm(in.data(), gamma.data(), beta.data(), 1e-12f, separate.data(), n);
    ops::layer_norm(in.data(), gamma.data(), beta.data(), 1e-12f, in.data(), n);
    test::check_close(in.data(), separate, n, test::tolerance::exact);
  }
}

TEST_CASE("ops/layer_norm: a large mean does not cancel the variance") {
  // |mean| / std = 1e4: E[x^2] - E[x]^2 would lose every digit in float32; two passes keep them.
  for (std::size_t n : {std::size_t{17}, std::size_t{64}, std::size_t{1000}}) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 97, 1e4f - 1.0f, 1e4f + 1.0f);
    const std::vector<double> exact = exact_layer_norm(in.data(), nullptr, nullptr, 1e-12, n);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::layer_norm(in.data(), nullptr, nullptr, 1e-12f, got.data(), n);
    ops::reference::layer_norm(in.data(), nullptr, nullptr, 1e-12f, want.data(), n);
    // Summing in[i] - in[0] keeps the mean's digits; rounding the mean to one float near 1e4 would cost 5e-4.
    test::check_close(got, exact, n, test::tolerance::pytorch_parity);
    test::check_close(want, exact, n, test::tolerance::pytorch_parity);
  }
}

TEST_CASE("ops/layer_norm: a constant row gives beta") {
  for (std::size_t n : {std::size_t{1}, std::size_t{16}, std::size_t{65}}) {
    CAPTURE(n);
    const std::vector<float> in(n, 3.75f);
    test::UnalignedFloats gamma(n, 98), beta(n, 99);
    for (float epsilon : {1e-12f, 1e-5f}) {
      std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
      ops::layer_norm(in.data(), gamma.data(), beta.data(), epsilon, got.data(), n);
      ops::reference::layer_norm(in.data(), gamma.data(), beta.data(), epsilon, want.data(), n);
      test::check_close(got, beta.data(), n, test::tolerance::exact);
      test::check_close(want, beta.data(), n, test::tolerance::exact);
      CHECK(std::isnan(got[n]));
    }
  }
}

TEST_CASE("ops/layer_norm: epsilon matters when the variance is tiny") {
  // Deviations of 1e-4 (variance 1e-8): eps 1e-5 shrinks the output ~30x, eps 1e-12 leaves it at +-1.
  const std::size_t n = 64;
  std::vector<float> in(n);
  for (std::size_t i = 0; i < n; ++i) in[i] = i % 2 ? 1e-4f : -1e-4f;
  for (double epsilon : {1e-12, 1e-8, 1e-5}) {
    CAPTURE(epsilon);
    const std::vector<double> exact = exact_layer_norm(in.data(), nullptr, nullptr, epsilon, n);
    std::vector<float> got = test::nan_filled(n);
    ops::layer_norm(in.data(), nullptr, nullptr, static_cast<float>(epsilon), got.data(), n);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
  }
}

TEST_CASE("ops/layer_norm: NaN and infinity make the row NaN") {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const std::size_t n = 33;
    test::UnalignedFloats in(n, 100);
    in[n - 1] = bad;
    std::vector<float> got = test::nan_filled(n);
    ops::layer_norm(in.data(), nullptr, nullptr, 1e-5f, got.data(), n);
    for (std::size_t i = 0; i < n; ++i) CHECK(std::isnan(got[i]));
  }
}

TEST_CASE("ops/layer_norm: empty rows write nothing") {
  std::vector<float> out = test::nan_filled(0);
  const float in = 1.0f;
  ops::layer_norm(&in, nullptr, nullptr, 1e-5f, out.data(), 0);
  ops::reference::layer_norm(&in, nullptr, nullptr, 1e-5f, out.data(), 0);
  CHECK(std::isnan(out[0]));
}
