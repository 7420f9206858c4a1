// Comparison helpers for tests: element-wise closeness with the failing index reported.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "support/tolerance.hpp"

namespace test {

inline bool is_close(double got, double want, Tolerance tolerance) {
  if (std::isnan(got) || std::isnan(want)) return false;  // NaN is never close, so unwritten outputs fail
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tolerance.absolute + tolerance.relative * std::fabs(want);
}

// Checks got[i] against want[i] for i < n; reports the first mismatch with its index.
template <class A, class B>
void check_close(const A& got, const B& want, std::size_t n, Tolerance tolerance) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_close(got[i], want[i], tolerance)) {
      CAPTURE(i);
      CAPTURE(n);
      CHECK(static_cast<double>(got[i]) == doctest::Approx(static_cast<double>(want[i])));
      return;
    }
  }
}

// Largest |got - want| over n elements (infinite when either is NaN).
template <class A, class B>
double max_abs_error(const A& got, const B& want, std::size_t n) {
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double error = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (std::isnan(error)) return std::numeric_limits<double>::infinity();
    if (error > worst) worst = error;
  }
  return worst;
}

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(n);
  for (auto& value : values) value = distribution(generator);
  return values;
}

// Vectors of n floats initialised to NaN, plus one guard element past the end.
inline std::vector<float> nan_filled(std::size_t n) {
  return std::vector<float>(n + 1, std::numeric_limits<float>::quiet_NaN());
}

// Sizes every kernel test covers: tails below, at and above every lane count.
inline const std::vector<std::size_t>& awkward_sizes() {
  static const std::vector<std::size_t> sizes{1, 3, 15, 16, 17, 63, 64, 65, 1000};
  return sizes;
}

}  // namespace test
