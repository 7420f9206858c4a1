// Embedding-table reductions: the sum of chosen rows, and masked sum / mean pooling of an id list
// (multi-valued features and behaviour histories).
// Invariants: table is row-major [rows, dim]; the caller guarantees every row index / id is in range
// (checked once when a request enters a Session); out holds dim floats and must not overlap the table.
// Never allocates.
// Maths: pool_embeddings follows torch-rechub AveragePooling / DeepCTR SequencePoolingLayer:
// mean = sum_t m_t e_t / (sum_t m_t + mean_epsilon), m_t = [id_t != padding_id], divisor formed in float32.
// A list with no unmasked id gives zeros, never 0 / 0. Pass a padding_id that never occurs (e.g. -1) when
// the model masks nothing.
// Rounding vs the reference: none. Each output element adds the rows in the given order, one float add
// each, exactly as the reference does, and the mean is one true division in both.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

enum class Pooling : std::uint8_t { sum = 0, mean = 1 };

namespace reference {
inline void sum_rows(const float* table, std::size_t dim, const std::uint32_t* rows, std::size_t count,
                     float* out) noexcept {
  for (std::size_t d = 0; d < dim; ++d) out[d] = 0.0f;
  for (std::size_t r = 0; r < count; ++r) {
    const float* row = table + static_cast<std::size_t>(rows[r]) * dim;
    for (std::size_t d = 0; d < dim; ++d) out[d] += row[d];
  }
}

inline void pool_embeddings(const float* table, std::size_t dim, const std::int64_t* ids, std::size_t count,
                            std::int64_t padding_id, Pooling pooling, float mean_epsilon, float* out) noexcept {
  for (std::size_t d = 0; d < dim; ++d) out[d] = 0.0f;
  std::size_t unmasked = 0;
  for (std::size_t t = 0; t < count; ++t) {
    if (ids[t] == padding_id) continue;
    ++unmasked;
    const float* row = table + static_cast<std::size_t>(ids[t]) * dim;
    for (std::size_t d = 0; d < dim; ++d) out[d] += row[d];
  }
  if (pooling != Pooling::mean || unmasked == 0) return;
  const float divisor = static_cast<float>(unmasked) + mean_epsilon;
  for (std::size_t d = 0; d < dim; ++d) out[d] /= divisor;
}
}  // namespace reference

#if RECLITE_HAS_SIMD
namespace detail {
inline void fill_zero(float* out, std::size_t n) noexcept {
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size) Batch(0.0f).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = 0.0f;
}

inline void add_row(const float* row, float* out, std::size_t n) noexcept {
  using Batch = simd::Batch<float>;
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    (Batch::load_unaligned(out + i) + Batch::load_unaligned(row + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] += row[i];
}

inline void divide_in_place(float* out, float divisor, std::size_t n) noexcept {
  using Batch = simd::Batch<float>;
  const Batch divisor_lanes(divisor);
  std::size_t i = 0;
  for (; i < n - n % Batch::size; i += Batch::size)
    (Batch::load_unaligned(out + i) / divisor_lanes).store_unaligned(out + i);
  for (; i < n; ++i) out[i] /= divisor;
}
}  // namespace detail
#endif

// out = sum of table rows rows[0], ..., rows[count - 1] in that order; count == 0 gives zeros.
inline void sum_rows(const float* table, std::size_t dim, const std::uint32_t* rows, std::size_t count,
                     float* out) noexcept {
#if RECLITE_HAS_SIMD
  detail::fill_zero(out, dim);
  for (std::size_t r = 0; r < count; ++r) detail::add_row(table + static_cast<std::size_t>(rows[r]) * dim, out, dim);
#else
  reference::sum_rows(table, dim, rows, count, out);
#endif
}

// Sum or mean of the rows of ids[0, count) other than padding_id; mean divides by (unmasked + mean_epsilon).
inline void pool_embeddings(const float* table, std::size_t dim, const std::int64_t* ids, std::size_t count,
                            std::int64_t padding_id, Pooling pooling, float mean_epsilon, float* out) noexcept {
#if RECLITE_HAS_SIMD
  detail::fill_zero(out, dim);
  std::size_t unmasked = 0;
  for (std::size_t t = 0; t < count; ++t) {
    if (ids[t] == padding_id) continue;
    ++unmasked;
    detail::add_row(table + static_cast<std::size_t>(ids[t]) * dim, out, dim);
  }
  if (pooling != Pooling::mean || unmasked == 0) return;
  detail::divide_in_place(out, static_cast<float>(unmasked) + mean_epsilon, dim);
#else
  reference::pool_embeddings(table, dim, ids, count, padding_id, pooling, mean_epsilon, out);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
