#include "reclite/ops/quantized_dot.hpp"

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "ops/kernel_check.hpp"

namespace ops = reclite::ops;

namespace {

// Values in [-127, 127]; `extreme` makes every value +-127, the largest products and sums.
std::vector<std::int8_t> random_int8(std::size_t n, unsigned seed, bool extreme = false) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> distribution(-127, 127);
  std::vector<std::int8_t> values(n);
  for (auto& value : values) {
    int drawn = distribution(generator);
    value = static_cast<std::int8_t>(extreme ? (drawn < 0 ? -127 : 127) : drawn);
  }
  return values;
}

// The inner product of row `row` with the query, from the layout's definition (rows16_offset).
std::int64_t direct_dot(const std::vector<std::int8_t>& query, const std::int8_t* blocks, std::size_t row,
                        std::size_t groups) {
  std::int64_t sum = 0;
  for (std::size_t column = 0; column < 4 * groups; ++column)
    sum += std::int64_t{query[column]} * blocks[ops::rows16_offset(row, column, groups)];
  return sum;
}

}  // namespace

TEST_CASE("ops/quantized_dot: simd equals the reference and the layout definition on awkward sizes") {
  for (std::size_t groups : {1, 2, 3, 4, 5, 7, 16, 17, 25, 64}) {
    for (std::size_t block_count : {1, 2, 3, 5}) {
      for (bool extreme : {false, true}) {
        CAPTURE(groups);
        CAPTURE(block_count);
        CAPTURE(extreme);
        const std::size_t bytes = block_count * groups * 64;
        // Both inputs one byte off alignment.
        auto blocks = random_int8(bytes + 1, static_cast<unsigned>(groups * 31 + block_count), extreme);
        auto query_storage = random_int8(4 * groups + 1, static_cast<unsigned>(groups + 7), extreme);
        std::vector<std::int8_t> query(query_storage.begin() + 1, query_storage.end());
        const std::size_t rows = 16 * block_count;
        std::vector<std::int32_t> got(rows + 1, std::numeric_limits<std::int32_t>::min());
        std::vector<std::int32_t> want(rows + 1, std::numeric_limits<std::int32_t>::min());
        ops::dot_int8_rows16(query_storage.data() + 1, blocks.data() + 1, got.data(), groups, block_count);
        ops::reference::dot_int8_rows16(query_storage.data() + 1, blocks.data() + 1, want.data(), groups, block_count);
        for (std::size_t row = 0; row < rows; ++row) {
          CAPTURE(row);
          CHECK(got[row] == want[row]);
          CHECK(want[row] == direct_dot(query, blocks.data() + 1, row, groups));
        }
        CHECK(got[rows] == std::numeric_limits<std::int32_t>::min());  // guard untouched
      }
    }
  }
}

TEST_CASE("ops/quantized_dot: largest sums stay exact") {
  // 512 groups of +-127 x +-127: |sum| = 2048 * 16129, far beyond int16 and float's 2^24.
  const std::size_t groups = 512;
  std::vector<std::int8_t> query(4 * groups, 127), blocks(groups * 64, -127);
  for (std::size_t column = 0; column < 4 * groups; ++column) blocks[ops::rows16_offset(3, column, groups)] = 127;
  std::vector<std::int32_t> got(16);
  ops::dot_int8_rows16(query.data(), blocks.data(), got.data(), groups, 1);
  CHECK(got[0] == -2048 * 16129);
  CHECK(got[3] == 2048 * 16129);
}

TEST_CASE("ops/quantized_dot: layout offsets") {
  CHECK(ops::rows16_offset(0, 0, 3) == 0);
  CHECK(ops::rows16_offset(0, 3, 3) == 3);
  CHECK(ops::rows16_offset(0, 4, 3) == 64);
  CHECK(ops::rows16_offset(1, 0, 3) == 4);
  CHECK(ops::rows16_offset(15, 11, 3) == 2 * 64 + 60 + 3);
  CHECK(ops::rows16_offset(16, 0, 3) == 3 * 64);
}
