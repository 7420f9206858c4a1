#include "reclite/ops/axpy.hpp"

#include <cmath>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

TEST_CASE("ops/axpy: axpy matches reference and double precision on awkward sizes") {
  const float alpha = -0.7f;
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats x(n, 31);
    test::UnalignedFloats y(n, 32);
    std::vector<float> got(y.data(), y.data() + n), want(y.data(), y.data() + n);
    got.push_back(std::numeric_limits<float>::quiet_NaN());  // guard: must not be read into or written
    std::vector<double> exact(n);
    for (std::size_t i = 0; i < n; ++i) exact[i] = static_cast<double>(y[i]) + static_cast<double>(alpha) * x[i];
    ops::axpy(alpha, x.data(), got.data(), n);
    ops::reference::axpy(alpha, x.data(), want.data(), n);
    test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
    test::check_close(got, exact, n, test::tolerance::simd_vs_reference);
    test::check_close(got, want, n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[n]));
  }
}

TEST_CASE("ops/axpy: add_to is exact") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats x(n, 33);
    test::UnalignedFloats y(n, 34);
    std::vector<float> got(y.data(), y.data() + n), want(y.data(), y.data() + n);
    got.push_back(std::numeric_limits<float>::quiet_NaN());
    std::vector<double> exact(n);
    for (std::size_t i = 0; i < n; ++i) exact[i] = static_cast<double>(y[i]) + x[i];
    ops::add_to(x.data(), got.data(), n);
    ops::reference::add_to(x.data(), want.data(), n);
    test::check_close(got, want, n, test::tolerance::exact);
    test::check_close(want, exact, n, test::tolerance::simd_vs_reference);
    CHECK(std::isnan(got[n]));
  }
}

TEST_CASE("ops/axpy: scale is exact out of place and in place") {
  const float alpha = 3.25f;
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats in(n, 35);
    std::vector<float> got = test::nan_filled(n), want = test::nan_filled(n);
    ops::scale(in.data(), alpha, got.data(), n);
    ops::reference::scale(in.data(), alpha, want.data(), n);
    test::check_close(got, want, n, test::tolerance::exact);
    // The double product of two floats is exact, so rounding it once gives the correctly rounded float product.
    for (std::size_t i = 0; i < n; ++i) CHECK(want[i] == static_cast<float>(static_cast<double>(alpha) * in[i]));
    CHECK(std::isnan(got[n]));
    ops::scale(in.data(), alpha, in.data(), n);
    test::check_close(in.data(), want, n, test::tolerance::exact);
  }
}

TEST_CASE("ops/axpy: infinity and NaN propagate as in IEEE arithmetic") {
  const float infinity = std::numeric_limits<float>::infinity();
  const std::size_t n = 17;
  std::vector<float> x(n, 1.0f), y(n, 2.0f);
  x[0] = infinity;
  x[16] = std::numeric_limits<float>::quiet_NaN();
  ops::axpy(2.0f, x.data(), y.data(), n);
  CHECK(y[0] == infinity);
  CHECK(y[1] == 4.0f);
  CHECK(std::isnan(y[16]));
  std::vector<float> z(n, 1.0f);
  ops::axpy(0.0f, x.data(), z.data(), n);  // 0 * inf is NaN: no special case for alpha == 0
  CHECK(std::isnan(z[0]));
  CHECK(z[1] == 1.0f);
}
