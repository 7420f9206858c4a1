#include "reclite/ops/l2_normalize.hpp"

#include <cmath>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

TEST_CASE("ops/l2_normalize: simd and reference match double precision on awkward sizes") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 111, -2.0f, 2.0f);
    double squares = 0;
    for (std::size_t i = 0; i < n; ++i) squares += static_cast<double>(in[i]) * in[i];
    CHECK_SUM_CLOSE(ops::squared_norm(in.data(), n), squares, squares, test::tolerance::simd_vs_reference);
    CHECK_SUM_CLOSE(ops::reference::squared_norm(in.data(), n), squares, squares,
                    test::tolerance::simd_vs_reference);
    std::vector<double> exact(n);
    for (std::size_t i = 0; i < n; ++i) exact[i] = in[i] / std::max(std::sqrt(squares), 1e-12);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::l2_normalize(in.data(), got.data(), n);
    ops::reference::l2_normalize(in.data(), want.data(), n);
    test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[n]));
    CHECK(std::isnan(want[n]));
    CHECK(ops::squared_norm(got.data(), n) == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("ops/l2_normalize: in place gives the same result as out of place") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 112);
    std::vector<float> separate = test::nan_filled(n);
    ops::l2_normalize(in.data(), separate.data(), n);
    ops::l2_normalize(in.data(), in.data(), n);
    test::check_close(in.data(), separate, n, test::tolerance::exact);
  }
}

TEST_CASE("ops/l2_normalize: a zero vector gives zeros") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    const std::vector<float> zeros(n, 0.0f);
    for (auto kernel : {ops::l2_normalize, ops::reference::l2_normalize}) {
      std::vector<float> got = test::nan_filled(n);
      kernel(zeros.data(), got.data(), n, 1e-12f);
      test::check_close(got, zeros, n, test::tolerance::exact);
      CHECK(std::isnan(got[n]));
    }
  }
}

TEST_CASE("ops/l2_normalize: vectors shorter than epsilon are divided by epsilon") {
  // torch: x / max(||x||, eps). ||x|| = 17 * 1e-14 < 1e-12, so out = x / 1e-12 = 1e-2 per element.
  const std::size_t n = 17 * 17;
  const std::vector<float> tiny(n, 1e-14f);
  for (auto kernel : {ops::l2_normalize, ops::reference::l2_normalize}) {
    std::vector<float> got = test::nan_filled(n);
    kernel(tiny.data(), got.data(), n, 1e-12f);
    for (std::size_t i = 0; i < n; ++i) CHECK(got[i] == doctest::Approx(1e-2).epsilon(1e-5));
    CHECK(std::isnan(got[n]));
  }
}

TEST_CASE("ops/l2_normalize: subnormal components are normalised not flushed") {
  const std::size_t n = 17;
  std::vector<float> in(n, 0.0f);
  in[3] = 3e-39f;  // subnormal; its square underflows to 0, so the norm falls to epsilon 0 -> guarded below
  in[16] = 4e-39f;
  std::vector<float> got = test::nan_filled(n);
  ops::l2_normalize(in.data(), got.data(), n, 1e-45f);
  // The squares underflow, so ||x|| is 0 and the divisor is epsilon (the smallest subnormal): finite, not NaN.
  for (std::size_t i = 0; i < n; ++i) CHECK(!std::isnan(got[i]));
  CHECK(got[0] == 0.0f);
}

TEST_CASE("ops/l2_normalize: NaN propagates to the whole vector") {
  const std::size_t n = 33;
  test::UnalignedFloats in(n, 113);
  in[5] = std::numeric_limits<float>::quiet_NaN();
  for (auto kernel : {ops::l2_normalize, ops::reference::l2_normalize}) {
    std::vector<float> got = test::nan_filled(n);
    kernel(in.data(), got.data(), n, 1e-12f);
    for (std::size_t i = 0; i < n; ++i) CHECK(std::isnan(got[i]));
  }
}
