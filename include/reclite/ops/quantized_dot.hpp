// Exact integer inner products of one int8 query with int8 rows stored 16 at a time, interleaved:
// the inner loop of the compact first pass of exact search (index/compact_vectors.hpp).
//
// Layout ("rows16"): rows are taken in blocks of 16 and columns in groups of 4 (zero-padded to a multiple of 4).
// Block b occupies 64 * groups bytes; inside it, group g holds 64 bytes: row r's columns 4g..4g+3 at
// bytes 4r..4r+3. One 64-byte load then feeds one multiply-accumulate lane per row (AVX-512 VNNI vpdpbusd,
// or vpmaddubsw + vpmaddwd on AVX2), with no horizontal sum per row. rows16_offset() gives a value's place.
// Invariants: every value (query and rows) lies in [-127, 127] (-128 is not allowed: the AVX2 sign trick and
// the symmetric quantiser never produce it); sums are exact in int32 for groups * 4 * 127 * 127 < 2^31,
// i.e. up to 133,000 columns. Never allocates; any alignment.
// Rounding: none. Integer sums are exact, so the SIMD paths equal the reference bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

// Byte offset of (row, column) in a rows16 matrix with `groups` groups of 4 columns.
constexpr std::size_t rows16_offset(std::size_t row, std::size_t column, std::size_t groups) noexcept {
  return (row / 16) * groups * 64 + (column / 4) * 64 + (row % 16) * 4 + column % 4;
}

namespace reference {
// out[16 * b + r] = sum over columns c < 4 * groups of query[c] * row (16 b + r)[c], for b < block_count.
inline void dot_int8_rows16(const std::int8_t* query, const std::int8_t* blocks, std::int32_t* out,
                            std::size_t groups, std::size_t block_count) noexcept {
  for (std::size_t block = 0; block < block_count; ++block) {
    const std::int8_t* rows = blocks + block * groups * 64;
    for (std::size_t row = 0; row < 16; ++row) {
      std::int32_t sum = 0;
      for (std::size_t group = 0; group < groups; ++group)
        for (std::size_t lane = 0; lane < 4; ++lane)
          sum += static_cast<std::int32_t>(query[4 * group + lane]) * rows[group * 64 + 4 * row + lane];
      out[16 * block + row] = sum;
    }
  }
}
}  // namespace reference

// The 16 * block_count inner products of `query` (4 * groups int8 values) with the rows of `blocks`
// (block_count rows16 blocks), into out (16 * block_count int32).
inline void dot_int8_rows16(const std::int8_t* query, const std::int8_t* blocks, std::int32_t* out,
                            std::size_t groups, std::size_t block_count) noexcept {
#if RECLITE_HAS_INT8_ROWS16
  simd::dot_int8_rows16(query, blocks, out, groups, block_count);
#else
  // Portable path (scalar builds, SSE2, NEON): 16 running sums, one per row, so the compiler can keep them in
  // vector registers; integer sums make any order exact.
  for (std::size_t block = 0; block < block_count; ++block) {
    const std::int8_t* rows = blocks + block * groups * 64;
    std::int32_t sums[16] = {};
    for (std::size_t group = 0; group < groups; ++group)
      for (std::size_t row = 0; row < 16; ++row)
        for (std::size_t lane = 0; lane < 4; ++lane)
          sums[row] += static_cast<std::int32_t>(query[4 * group + lane]) * rows[group * 64 + 4 * row + lane];
    for (std::size_t row = 0; row < 16; ++row) out[16 * block + row] = sums[row];
  }
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
