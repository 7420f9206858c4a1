#include "reclite/ops/indices_not_below.hpp"

#include <cstdint>
#include <limits>
#include <vector>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

TEST_CASE("ops/indices_not_below: simd equals the reference on awkward sizes") {
  for (std::size_t n : test::awkward_sizes()) {
    for (float threshold : {-2.0f, 0.0f, 0.9f, 2.0f}) {
      CAPTURE(n);
      CAPTURE(threshold);
      test::UnalignedFloats values(n, static_cast<unsigned>(n + 3));
      if (n > 2) values[n / 2] = std::numeric_limits<float>::quiet_NaN();  // NaN is never below: selected
      if (n > 5) values[n - 1] = threshold;                               // equal: selected
      std::vector<std::uint32_t> got(n + 1, 0xDEADBEEFu), want(n + 1, 0xDEADBEEFu);
      const std::size_t count = ops::indices_not_below(values.data(), threshold, got.data(), n);
      const std::size_t expected = ops::reference::indices_not_below(values.data(), threshold, want.data(), n);
      REQUIRE(count == expected);
      for (std::size_t i = 0; i < count; ++i) {
        CAPTURE(i);
        CHECK(got[i] == want[i]);
        CHECK(!(values[got[i]] < threshold));
        if (i > 0) CHECK(got[i - 1] < got[i]);
      }
      std::size_t below = 0;
      for (std::size_t i = 0; i < n; ++i) below += values[i] < threshold;
      CHECK(count + below == n);
      CHECK(got[count] == 0xDEADBEEFu);  // nothing written past the survivors
    }
  }
}

TEST_CASE("ops/indices_not_below: infinite threshold and empty input") {
  std::vector<float> values{1.0f, -std::numeric_limits<float>::infinity(), 3.0f};
  std::uint32_t indices[4] = {};
  CHECK(ops::indices_not_below(values.data(), -std::numeric_limits<float>::infinity(), indices, 3) == 3);
  CHECK(ops::indices_not_below(values.data(), std::numeric_limits<float>::infinity(), indices, 3) == 0);
  CHECK(ops::indices_not_below(values.data(), 0.0f, indices, 0) == 0);
}
