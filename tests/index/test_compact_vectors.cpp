#include "reclite/index/compact_vectors.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "index/compact_data.hpp"
#include "reclite/ops/dot.hpp"

using reclite::index::CompactVectors;
namespace ops = reclite::ops;

namespace {

// The bound's promise, row by row: the float32 score, whichever summation order computes it, never exceeds the
// upper bound from the int8 copy. Returns the largest (upper - score) / (||u|| ||v||) seen, for tightness checks.
double check_upper_bounds(const std::vector<float>& vectors, std::size_t count, std::size_t dim,
                          const std::vector<float>& query, const CompactVectors& compact) {
  CompactVectors::Query prepared;
  if (!compact.prepare(query.data(), prepared)) return 0.0;
  double query_norm = 0;
  for (float value : query) query_norm += double(value) * value;
  query_norm = std::sqrt(query_norm);
  double loosest = 0;
  std::vector<float> upper(CompactVectors::chunk_rows);
  for (std::size_t first = 0; first < count; first += CompactVectors::chunk_rows) {
    std::size_t rows = std::min(CompactVectors::chunk_rows, count - first);
    compact.upper_bounds(prepared, first, rows, upper.data());
    for (std::size_t i = 0; i < rows; ++i) {
      const float* row = vectors.data() + (first + i) * dim;
      for (float score : {ops::dot(query.data(), row, dim), ops::reference::dot(query.data(), row, dim)}) {
        if (std::isnan(score)) continue;
        CAPTURE(first + i);
        CAPTURE(score);
        CAPTURE(upper[i]);
        REQUIRE(!(upper[i] < score));
        double row_norm = 0;
        for (std::size_t j = 0; j < dim; ++j) row_norm += double(row[j]) * row[j];
        double scale = query_norm * std::sqrt(row_norm);
        if (std::isfinite(upper[i]) && scale > 0) loosest = std::max(loosest, (double(upper[i]) - score) / scale);
      }
    }
  }
  return loosest;
}

}  // namespace

TEST_CASE("index/compact_vectors: upper bounds hold for every row shape dim and query") {
  for (auto shape : test::all_vector_shapes()) {
    for (std::size_t dim : {1, 3, 16, 17, 64, 100}) {
      const std::size_t count = 1000;
      CAPTURE(test::shape_name(shape));
      CAPTURE(dim);
      auto vectors = test::shaped_vectors(shape, count, dim, static_cast<unsigned>(dim * 13 + int(shape)));
      auto compact = CompactVectors::build(vectors.data(), count, dim, dim);
      REQUIRE(compact.size() == count);
      for (const auto& query : test::shaped_queries(dim, static_cast<unsigned>(dim + 1))) {
        double loosest = check_upper_bounds(vectors, count, dim, query, compact);
        // Tight enough to prune: well under 10% of ||u|| ||v|| (int8 on both sides).
        if (shape == test::VectorShape::gaussian) CHECK(loosest < 0.1);
      }
    }
  }
}

TEST_CASE("index/compact_vectors: strided rows and sizes") {
  const std::size_t count = 17, dim = 3, stride = 5;
  auto vectors = test::shaped_vectors(test::VectorShape::gaussian, count, stride, 4);
  auto compact = CompactVectors::build(vectors.data(), count, dim, stride);
  CHECK(compact.memory_bytes() == 2 * 64 + 12 * count);  // two blocks of 16 rows x one group of 4 columns
  std::vector<float> packed(count * dim);
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t j = 0; j < dim; ++j) packed[i * dim + j] = vectors[i * stride + j];
  for (const auto& query : test::shaped_queries(dim, 9)) check_upper_bounds(packed, count, dim, query, compact);
}

TEST_CASE("index/compact_vectors: queries out of range and unsupported sizes are refused") {
  std::vector<float> vectors{1, 2, 3, 4};
  auto compact = CompactVectors::build(vectors.data(), 2, 2, 2);
  CompactVectors::Query prepared;
  float zero[2] = {0, 0}, huge[2] = {1e13f, 1}, tiny[2] = {1e-13f, 0}, fine[2] = {1e-3f, 1e3f};
  CHECK(!compact.prepare(zero, prepared));
  CHECK(!compact.prepare(huge, prepared));
  CHECK(!compact.prepare(tiny, prepared));
  CHECK(compact.prepare(fine, prepared));
  std::vector<float> wide((CompactVectors::max_dim + 1) * 2, 1.0f);
  CHECK(CompactVectors::build(wide.data(), 2, CompactVectors::max_dim + 1, CompactVectors::max_dim + 1).empty());
  CHECK(CompactVectors::build(vectors.data(), 0, 2, 2).empty());
  CHECK(CompactVectors().memory_bytes() == 0);
}
