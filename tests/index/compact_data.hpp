// Test data for the compact first pass of exact search: shapes chosen to break an error bound or a tie rule
// (clusters, skewed norms, exact duplicates, ties, tiny and huge magnitudes, non-finite rows).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace test {

enum class VectorShape {
  gaussian,
  clustered,       // 5 centres, noise 1e-2 of their size: many near-ties
  skewed_norms,    // row norms spread over 1e-3 .. 1e3
  duplicated,      // every row is one of 7 distinct rows: exact ties
  small_integers,  // values in -2..2: exact float sums, frequent ties
  tiny,            // about 1e-11 (inside the copy's range)
  huge,            // about 1e11 (inside the copy's range)
  out_of_range,    // about 1e-39 (subnormal) and 1e20: rows the copy cannot bound, always re-scored
  mixed,           // gaussian with zero, NaN, infinite, subnormal and 1e30 rows
};

inline const std::vector<VectorShape>& all_vector_shapes() {
  static const std::vector<VectorShape> shapes{VectorShape::gaussian,     VectorShape::clustered,
                                               VectorShape::skewed_norms, VectorShape::duplicated,
                                               VectorShape::small_integers, VectorShape::tiny,
                                               VectorShape::huge,         VectorShape::out_of_range,
                                               VectorShape::mixed};
  return shapes;
}

inline std::string shape_name(VectorShape shape) {
  const char* names[] = {"gaussian", "clustered", "skewed_norms", "duplicated", "small_integers",
                         "tiny",     "huge",      "out_of_range", "mixed"};
  return names[static_cast<int>(shape)];
}

// count rows of dim floats, row-major.
inline std::vector<float> shaped_vectors(VectorShape shape, std::size_t count, std::size_t dim, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> rows(count * dim);
  auto fill_gaussian = [&](float* row, float scale) {
    for (std::size_t j = 0; j < dim; ++j) row[j] = normal(generator) * scale;
  };
  std::vector<float> pool;
  if (shape == VectorShape::clustered || shape == VectorShape::duplicated) {
    pool.resize((shape == VectorShape::clustered ? 5 : 7) * dim);
    for (auto& value : pool) value = normal(generator);
  }
  for (std::size_t i = 0; i < count; ++i) {
    float* row = rows.data() + i * dim;
    switch (shape) {
      case VectorShape::gaussian: fill_gaussian(row, 1.0f); break;
      case VectorShape::clustered: {
        const float* centre = pool.data() + (generator() % 5) * dim;
        for (std::size_t j = 0; j < dim; ++j) row[j] = centre[j] + 0.01f * normal(generator);
        break;
      }
      case VectorShape::skewed_norms: fill_gaussian(row, std::pow(10.0f, 6.0f * uniform(generator) - 3.0f)); break;
      case VectorShape::duplicated: {
        const float* source = pool.data() + (generator() % 7) * dim;
        for (std::size_t j = 0; j < dim; ++j) row[j] = source[j];
        break;
      }
      case VectorShape::small_integers:
        for (std::size_t j = 0; j < dim; ++j) row[j] = static_cast<float>(static_cast<int>(generator() % 5) - 2);
        break;
      case VectorShape::tiny: fill_gaussian(row, 1e-11f); break;
      case VectorShape::huge: fill_gaussian(row, 1e11f); break;
      case VectorShape::out_of_range: fill_gaussian(row, i % 2 ? 1e-39f : 1e20f); break;
      case VectorShape::mixed: {
        fill_gaussian(row, 1.0f);
        switch (i % 11) {
          case 1: for (std::size_t j = 0; j < dim; ++j) row[j] = 0.0f; break;
          case 3: row[dim / 2] = std::numeric_limits<float>::quiet_NaN(); break;
          case 5: row[0] = (i % 2 ? 1.0f : -1.0f) * std::numeric_limits<float>::infinity(); break;
          case 7: for (std::size_t j = 0; j < dim; ++j) row[j] *= 1e-40f; break;
          case 9: row[dim - 1] = 1e30f; break;
          default: break;
        }
        break;
      }
    }
  }
  return rows;
}

// Queries at several magnitudes: inside the copy's range, at its edges, out of it (the float32 fallback).
inline std::vector<std::vector<float>> shaped_queries(std::size_t dim, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> queries;
  for (float scale : {1.0f, 1e-11f, 1e11f, 1e-39f, 1e25f}) {
    std::vector<float> query(dim);
    for (auto& value : query) value = normal(generator) * scale;
    queries.push_back(query);
  }
  std::vector<float> one_hot(dim, 0.0f), zeros(dim, 0.0f), integers(dim);
  one_hot[dim / 2] = 1.0f;
  for (auto& value : integers) value = static_cast<float>(static_cast<int>(generator() % 5) - 2);
  queries.push_back(one_hot);
  queries.push_back(zeros);
  queries.push_back(integers);
  return queries;
}

}  // namespace test
