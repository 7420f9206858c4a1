// Shared helpers for the kernel tests: unaligned random inputs and summation-aware error bounds.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include <doctest/doctest.h>

#include "support/check.hpp"
#include "support/tolerance.hpp"

namespace test {

// n random floats stored from index 1, so kernels see data() + 1: one float off any vector alignment.
struct UnalignedFloats {
  std::vector<float> storage;
  UnalignedFloats(std::size_t n, unsigned seed, float low = -1.0f, float high = 1.0f)
      : storage(random_floats(n + 1, seed, low, high)) {}
  float* data() { return storage.data() + 1; }
  const float* data() const { return storage.data() + 1; }
  float& operator[](std::size_t i) { return storage[i + 1]; }
  float operator[](std::size_t i) const { return storage[i + 1]; }
};

// Summation error grows with the magnitudes of the summed terms, not with the (possibly cancelled) result,
// so a sum is judged against absolute + relative * sum |term|.
inline bool sum_is_close(double got, double want, double magnitude, Tolerance tolerance) {
  if (std::isnan(got) || std::isnan(want)) return false;
  return std::fabs(got - want) <= tolerance.absolute + tolerance.relative * magnitude;
}

#define CHECK_SUM_CLOSE(got, want, magnitude, tolerance)                       \
  do {                                                                         \
    double got_value_ = (got), want_value_ = (want);                           \
    CAPTURE(got_value_);                                                       \
    CAPTURE(want_value_);                                                      \
    CHECK(test::sum_is_close(got_value_, want_value_, (magnitude), (tolerance))); \
  } while (false)

}  // namespace test
