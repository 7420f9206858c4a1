#include "reclite/ops/dot.hpp"

#include <cmath>
#include <limits>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

TEST_CASE("ops/dot: simd and reference match double precision on awkward sizes") {
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    test::UnalignedFloats a(n, 11), b(n, 12);
    double exact = 0, magnitude = 0;
    for (std::size_t i = 0; i < n; ++i) {
      exact += static_cast<double>(a[i]) * b[i];
      magnitude += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    const float got = ops::dot(a.data(), b.data(), n);
    const float want = ops::reference::dot(a.data(), b.data(), n);
    CHECK_SUM_CLOSE(want, exact, magnitude, test::tolerance::simd_vs_reference);
    CHECK_SUM_CLOSE(got, exact, magnitude, test::tolerance::simd_vs_reference);
    CHECK_SUM_CLOSE(got, want, magnitude, test::tolerance::simd_vs_reference);
  }
}

TEST_CASE("ops/dot: empty vectors give zero") {
  const float one = 1.0f;
  CHECK(ops::dot(&one, &one, 0) == 0.0f);
  CHECK(ops::reference::dot(&one, &one, 0) == 0.0f);
}

TEST_CASE("ops/dot: integer valued inputs give the exact sum") {
  // Small integers multiply and add without rounding, so every summation order must give the same value.
  for (std::size_t n : test::awkward_sizes()) {
    CAPTURE(n);
    std::vector<float> a(n), b(n);
    double exact = 0;
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
      b[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
      exact += static_cast<double>(a[i]) * b[i];
    }
    CHECK(ops::dot(a.data(), b.data(), n) == exact);
    CHECK(ops::reference::dot(a.data(), b.data(), n) == exact);
  }
}

TEST_CASE("ops/dot: infinity and NaN propagate from any position") {
  const float infinity = std::numeric_limits<float>::infinity();
  for (std::size_t n : test::awkward_sizes()) {
    for (std::size_t position : {std::size_t{0}, n / 2, n - 1}) {
      CAPTURE(n);
      CAPTURE(position);
      std::vector<float> a(n, 0.5f), b(n, 0.25f);
      a[position] = infinity;
      CHECK(ops::dot(a.data(), b.data(), n) == infinity);
      a[position] = std::numeric_limits<float>::quiet_NaN();
      CHECK(std::isnan(ops::dot(a.data(), b.data(), n)));
      a[position] = infinity;
      b[position] = 0.0f;  // inf * 0 is NaN
      CHECK(std::isnan(ops::dot(a.data(), b.data(), n)));
    }
  }
}

TEST_CASE("ops/dot: denormal products are summed not flushed") {
  const std::size_t n = 65;
  std::vector<float> a(n, 1e-20f), b(n, 1e-20f);  // each product 1e-40 is subnormal in float32
  const double exact = 65 * 1e-40;
  CHECK(ops::dot(a.data(), b.data(), n) == doctest::Approx(exact).epsilon(1e-3));
  CHECK(ops::reference::dot(a.data(), b.data(), n) == doctest::Approx(exact).epsilon(1e-3));
}
