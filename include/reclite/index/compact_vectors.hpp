// CompactVectors: an int8 copy of a float32 item matrix with, per row, what is needed to bound rigorously how
// far its float32 inner product with any query can be from the int8 one. Exact search scans this copy first
// (4 bytes per value become 1) and re-scores in float32 only the rows whose upper bound can still reach the
// current k-th best exact score (index/exact_search.hpp), so results are exactly those of the float32 scan.
//
// Quantisation (build, once): row v is stored as q = round(v / s), s = max|v| / 127, q in [-127, 127]
// (symmetric rounding), in the rows16 layout of ops/quantized_dot.hpp; e = v - s q is its error. Per row we keep
// s, N >= ||v|| and E >= ||e|| (computed in double, rounded up to float). A query u is quantised the same way
// at search time (uq, scale t, error f = u - t uq), U >= ||u||, F >= ||f||.
//
// The bound. With a = t s <uq, q> (the int8 estimate, the integer sum being exact),
//   <u, v> - a = <u, v> - <u - f, v - e> = <f, v> + <u, e> - <f, e>,  so  |<u, v> - a| <= F N + (U + F) E
// by Cauchy-Schwarz. Float rounding on top: the engine's float32 score s' = ops::dot(u, v) (any summation
// order, FMA or not) is within gamma_d sum|u_j v_j| <= gamma_d U N of <u, v> (gamma_d = d 2^-24 / (1 - d 2^-24),
// Higham, Accuracy and Stability, 3.1); the computed estimate a' (int -> float, two products: |a| <=
// (U + F)(N + E)) and the computed upper bound (three products, three sums of terms each below
// 2 (U + F)(N + E)) add at most 15 * 2^-24 (U + F)(N + E). eps = (d + 16) 2^-23 = (2d + 32) 2^-24 covers both
// with room to spare (d = columns rounded up to 4), so with
//   alpha = F + eps (U + F),  beta = (U + F)(1 + eps),  upper' = a' + alpha N + beta E + tiny
// we have s' <= upper' for every row. Underflow adds at most 2^-126 per operation even with flush-to-zero or
// denormals-are-zero (and each value is at most 2^40, so DAZ loses at most 2^-86 per product); tiny = 2^-60
// covers d <= 2048 such terms. Overflow cannot happen: rows and queries are used only when their largest
// magnitude lies in [2^-40, 2^40] (or the row is all zeros); other rows are marked N = +inf (always
// re-scored: non-finite values, extreme magnitudes) and other queries fall back to the float32 scan.
// A row is skipped only when upper' < the k-th best exact score so far, hence s' < that score: it cannot be
// in the result, ties included (a later row with an equal score loses to the lower entry already kept).
//
// Memory: 64 * ceil(count / 16) * ceil(dim / 4) bytes of int8 plus 12 bytes per row (s, N, E): for 100k x 64
// floats (25.6 MB) that is 6.4 MB + 1.2 MB = 7.6 MB, owned here and allocated once by build().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/ops/quantized_dot.hpp"

RECLITE_BEGIN_NAMESPACE
namespace index {

class CompactVectors {
 public:
  // Widest rows the copy supports (the prepared query lives in a fixed buffer of this size).
  static constexpr std::size_t max_dim = 2048;
  // Rows per first-pass step: the int32 and float buffers of one step live on the stack.
  static constexpr std::size_t chunk_rows = 512;

  // A query prepared for the first pass; 2 KB, meant for the stack.
  struct Query {
    std::int8_t values[max_dim];
    float scale;     // t
    float alpha;     // multiplies N
    float beta;      // multiplies E
    float absolute;  // underflow allowance
  };

  CompactVectors() noexcept = default;

  // The compact copy of `count` rows of `dim` floats (row r at vectors + r * row_stride). Allocates.
  // Empty when dim is 0 or above max_dim.
  static CompactVectors build(const float* vectors, std::size_t count, std::size_t dim, std::size_t row_stride) {
    CompactVectors copy;
    if (dim == 0 || dim > max_dim || count == 0) return copy;
    copy.count_ = count;
    copy.dim_ = dim;
    copy.groups_ = (dim + 3) / 4;
    copy.blocks_.assign((count + 15) / 16 * copy.groups_ * 64, 0);
    copy.scale_.assign(count, 0.0f);
    copy.norm_.assign(count, 0.0f);
    copy.error_.assign(count, 0.0f);
    for (std::size_t row = 0; row < count; ++row) {
      const float* v = vectors + row * row_stride;
      float largest = 0.0f;
      bool finite = true;
      for (std::size_t j = 0; j < dim; ++j) {
        finite = finite && std::isfinite(v[j]);
        largest = std::max(largest, std::fabs(v[j]));
      }
      if (!finite || (largest != 0.0f && !in_range(largest))) {
        copy.norm_[row] = std::numeric_limits<float>::infinity();  // always re-scored
        continue;
      }
      if (largest == 0.0f) continue;  // s = N = E = 0, q = 0: the bound is exact
      const float scale = largest / 127.0f;
      double norm = 0.0, error = 0.0;
      for (std::size_t j = 0; j < dim; ++j) {
        long rounded = std::lround(static_cast<double>(v[j]) / scale);
        auto q = static_cast<std::int8_t>(std::clamp<long>(rounded, -127, 127));
        copy.blocks_[ops::rows16_offset(row, j, copy.groups_)] = q;
        double e = static_cast<double>(v[j]) - static_cast<double>(scale) * q;  // s q is exact in double
        norm += static_cast<double>(v[j]) * v[j];
        error += e * e;
      }
      copy.scale_[row] = scale;
      copy.norm_[row] = round_up(std::sqrt(norm));
      copy.error_[row] = round_up(std::sqrt(error));
    }
    return copy;
  }

  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  std::size_t dim() const noexcept { return dim_; }
  // Bytes owned: the int8 rows and 12 bytes per row.
  std::size_t memory_bytes() const noexcept { return blocks_.size() + 3 * sizeof(float) * count_; }

  // Quantises `query` ([dim] finite floats) into `prepared`. False when its largest magnitude is 0 or outside
  // [2^-40, 2^40], where the bound above is not established: scan in float32 then.
  bool prepare(const float* query, Query& prepared) const noexcept {
    float largest = 0.0f;
    for (std::size_t j = 0; j < dim_; ++j) largest = std::max(largest, std::fabs(query[j]));
    if (!(largest != 0.0f && in_range(largest))) return false;
    const float scale = largest / 127.0f;
    double norm = 0.0, error = 0.0;
    for (std::size_t j = 0; j < dim_; ++j) {
      long rounded = std::lround(static_cast<double>(query[j]) / scale);
      auto q = static_cast<std::int8_t>(std::clamp<long>(rounded, -127, 127));
      prepared.values[j] = q;
      double f = static_cast<double>(query[j]) - static_cast<double>(scale) * q;
      norm += static_cast<double>(query[j]) * query[j];
      error += f * f;
    }
    for (std::size_t j = dim_; j < 4 * groups_; ++j) prepared.values[j] = 0;
    const double u = round_up(std::sqrt(norm)), f = round_up(std::sqrt(error));
    const double eps = static_cast<double>(4 * groups_ + 16) * 0x1p-23;
    prepared.scale = scale;
    prepared.alpha = round_up((f + eps * (u + f)) * (1 + 0x1p-40));
    prepared.beta = round_up((u + f) * (1 + eps) * (1 + 0x1p-40));
    prepared.absolute = 0x1p-60f;
    return true;
  }

  // upper[i] >= the float32 score of row first + i (see the bound above), for i < rows; first is a multiple
  // of 16 and rows <= chunk_rows.
  void upper_bounds(const Query& query, std::size_t first, std::size_t rows, float* upper) const noexcept {
    RECLITE_ASSERT(first % 16 == 0 && rows <= chunk_rows && first + rows <= count_);
    alignas(64) std::int32_t dots[chunk_rows];
    ops::dot_int8_rows16(query.values, blocks_.data() + first / 16 * groups_ * 64, dots, groups_, (rows + 15) / 16);
    const float* scale = scale_.data() + first;
    const float* norm = norm_.data() + first;
    const float* error = error_.data() + first;
    const float t = query.scale, alpha = query.alpha, beta = query.beta, absolute = query.absolute;
    for (std::size_t i = 0; i < rows; ++i)
      upper[i] = static_cast<float>(dots[i]) * (t * scale[i]) + (alpha * norm[i] + (beta * error[i] + absolute));
  }

 private:
  static bool in_range(float magnitude) noexcept { return magnitude >= 0x1p-40f && magnitude <= 0x1p40f; }

  // The smallest float >= x (x >= 0), after a relative nudge for the double computation's own rounding.
  static float round_up(double x) noexcept {
    x *= 1 + 0x1p-40;
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
  }

  std::size_t count_ = 0;
  std::size_t dim_ = 0;
  std::size_t groups_ = 0;
  std::vector<std::int8_t> blocks_;  // rows16 layout, count rounded up to 16 rows (zero padding)
  std::vector<float> scale_;         // s per row
  std::vector<float> norm_;          // N per row (+inf: always re-scored)
  std::vector<float> error_;         // E per row
};

}  // namespace index
RECLITE_END_NAMESPACE
