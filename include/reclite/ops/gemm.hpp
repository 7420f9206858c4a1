// Small dense matrix products for attention and batched layers (m up to ~64, n and k up to ~256).
// gemm_nt: c[m, n] = act(a[m, k] · b[n, k]^T + bias[n])  (b in PyTorch nn.Linear layout; also Q·K^T).
// gemm_nn: c[m, n] = a[m, k] · b[k, n]                     (e.g. attention weights · V); also with row strides.
// gemm_nn_row_groups: for g < groups, row c_g[1, n] = a_g[1, k] · b_g[k, n], e.g. one group per attention head
//   of a single query (an incremental step): every group's accumulators run at once, so the sequential sums
//   over k of several heads overlap instead of each waiting on its own fused multiply-add latency.
// Dense layers on fixed weights use ops/packed_linear.hpp instead (weights packed once, no horizontal sums).
// Invariants: all matrices row-major (dense unless strides are given); c must not overlap a or b; bias has n floats or is
// nullptr. Any alignment. Never allocates.
// Rounding vs the reference: gemm_nt computes tiles of (Batch::size / 4) rows of a by 4 rows of b, one
// accumulator per pair with lanes over k, summed by one transpose-and-add tree (lane order and FMA differ
// from the reference's sequential sum). gemm_nn vectorises over n and sums over k in sequential order with
// FMA, so it differs from the reference only by the single rounding of each fused multiply-add;
// gemm_nn_row_groups does the same arithmetic, so each group's row equals gemm_nn's with m = 1 bit for bit.
#pragma once

#include <cstddef>
#include <utility>

#include "reclite/core/config.hpp"
#include "reclite/ops/activation.hpp"
#include "reclite/ops/dot.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
inline void gemm_nt(const float* a, const float* b, const float* bias, float* c, std::size_t m, std::size_t n,
                    std::size_t k, Activation activation = Activation::none) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (std::size_t p = 0; p < k; ++p) sum += a[i * k + p] * b[j * k + p];
      c[i * n + j] = sum + (bias ? bias[j] : 0.0f);
    }
  }
  reference::apply_activation(activation, c, c, m * n);  // qualified: ADL also finds ops::
}

inline void gemm_nn(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                    std::size_t m, std::size_t n, std::size_t k) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (std::size_t p = 0; p < k; ++p) sum += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] = sum;
    }
  }
}

inline void gemm_nn(const float* a, const float* b, float* c, std::size_t m, std::size_t n, std::size_t k) noexcept {
  gemm_nn(a, k, b, n, c, n, m, n, k);
}

inline void gemm_nn_row_groups(const float* a, std::size_t a_group_stride, const float* b, std::size_t ldb,
                               std::size_t b_group_stride, float* c, std::size_t c_group_stride, std::size_t groups,
                               std::size_t n, std::size_t k) noexcept {
  for (std::size_t g = 0; g < groups; ++g)
    gemm_nn(a + g * a_group_stride, k, b + g * b_group_stride, ldb, c + g * c_group_stride, n, 1, n, k);
}
}  // namespace reference

#if RECLITE_HAS_SIMD
namespace detail {
// Tile geometry of gemm_nt: pairs (row of a, row of b) fill exactly one batch of sums after the transpose.
constexpr std::size_t gemm_nt_b_rows = 4;
constexpr std::size_t gemm_nt_a_rows = simd::Batch<float>::size / gemm_nt_b_rows;
static_assert(simd::Batch<float>::size % gemm_nt_b_rows == 0, "gemm_nt tile needs lanes divisible by 4");

// c[i0 + t / 4][j0 + t % 4] for t < Batch::size, bias included, activation not yet applied.
template <std::size_t... Pair>
inline void gemm_nt_tile(const float* a, const float* b, const float* bias, float* c, std::size_t i0,
                         std::size_t j0, std::size_t n, std::size_t k, std::index_sequence<Pair...>) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  constexpr std::size_t b_rows = gemm_nt_b_rows;
  Batch sums[lanes] = {(static_cast<void>(Pair), Batch(0.0f))...};
  const float* a_block = a + i0 * k;
  const float* b_block = b + j0 * k;
  std::size_t p = 0;
  for (; p < k - k % lanes; p += lanes) {
    // Loads are repeated per pair in the fold; the compiler keeps each distinct row load once.
    ((sums[Pair] = simd::fma(Batch::load_unaligned(a_block + (Pair / b_rows) * k + p),
                             Batch::load_unaligned(b_block + (Pair % b_rows) * k + p), sums[Pair])),
     ...);
  }
  alignas(64) float tails[lanes];
  for (std::size_t pair = 0; pair < lanes; ++pair) {
    const float* a_row = a_block + (pair / b_rows) * k;
    const float* b_row = b_block + (pair % b_rows) * k;
    float tail = 0.0f;
    for (std::size_t q = p; q < k; ++q) tail += a_row[q] * b_row[q];
    tails[pair] = tail + (bias ? bias[j0 + pair % b_rows] : 0.0f);
  }
  alignas(64) float results[lanes];
  (simd::reduce_add_rows(sums) + Batch::load_aligned(tails)).store_aligned(results);
  for (std::size_t pair = 0; pair < lanes; ++pair) c[(i0 + pair / b_rows) * n + j0 + pair % b_rows] = results[pair];
}

// Rows [i0, i0 + rows) of c, columns [j0, j0 + columns * Batch::size), summed over k in sequential order.
// Accumulator t is row t / columns, batch t % columns. Row strides: lda (a), ldb (b), ldc (c).
template <std::size_t rows, std::size_t columns, std::size_t... Tile>
inline void gemm_nn_tile(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                         std::size_t i0, std::size_t j0, std::size_t k, std::index_sequence<Tile...>) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  Batch sums[rows * columns] = {(static_cast<void>(Tile), Batch(0.0f))...};
  for (std::size_t p = 0; p < k; ++p) {
    const float* b_row = b + p * ldb + j0;
    ((sums[Tile] = simd::fma(Batch(a[(i0 + Tile / columns) * lda + p]),
                             Batch::load_unaligned(b_row + (Tile % columns) * lanes), sums[Tile])),
     ...);
  }
  (sums[Tile].store_unaligned(c + (i0 + Tile / columns) * ldc + j0 + (Tile % columns) * lanes), ...);
}

template <std::size_t rows>
inline void gemm_nn_rows(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                         std::size_t i0, std::size_t n, std::size_t k) noexcept {
  constexpr std::size_t lanes = simd::Batch<float>::size;
  std::size_t j = 0;
  for (; j < n - n % (2 * lanes); j += 2 * lanes)
    gemm_nn_tile<rows, 2>(a, lda, b, ldb, c, ldc, i0, j, k, std::make_index_sequence<rows * 2>{});
  for (; j < n - n % lanes; j += lanes)
    gemm_nn_tile<rows, 1>(a, lda, b, ldb, c, ldc, i0, j, k, std::make_index_sequence<rows>{});
  for (std::size_t i = i0; i < i0 + rows; ++i) {
    for (std::size_t column = j; column < n; ++column) {  // columns past the last whole batch
      float sum = 0.0f;
      for (std::size_t p = 0; p < k; ++p) sum += a[i * lda + p] * b[p * ldb + column];
      c[i * ldc + column] = sum;
    }
  }
}

// `group_count` groups of gemm_nn_row_groups times `batch_count` batches of columns (from column j0) at once,
// group_count * batch_count <= 8 accumulators: per group one row pointer and one column pointer stay in
// registers, and each a value is broadcast once per group.
template <std::size_t group_count, std::size_t batch_count>
inline void gemm_nn_row_group_tile(const float* a, std::size_t a_group_stride, const float* b, std::size_t ldb,
                                   std::size_t b_group_stride, float* c, std::size_t c_group_stride, std::size_t j0,
                                   std::size_t k) noexcept {
  using Batch = simd::Batch<float>;
  constexpr std::size_t lanes = Batch::size;
  Batch sums[group_count * batch_count];
#pragma GCC unroll 8
  for (std::size_t t = 0; t < group_count * batch_count; ++t) sums[t] = Batch(0.0f);
  for (std::size_t p = 0; p < k; ++p) {
#pragma GCC unroll 8
    for (std::size_t g = 0; g < group_count; ++g) {
      const Batch x(a[g * a_group_stride + p]);
      const float* b_row = b + g * b_group_stride + p * ldb + j0;
#pragma GCC unroll 8
      for (std::size_t batch = 0; batch < batch_count; ++batch)
        sums[g * batch_count + batch] =
            simd::fma(x, Batch::load_unaligned(b_row + batch * lanes), sums[g * batch_count + batch]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t g = 0; g < group_count; ++g)
#pragma GCC unroll 8
    for (std::size_t batch = 0; batch < batch_count; ++batch)
      sums[g * batch_count + batch].store_unaligned(c + g * c_group_stride + j0 + batch * lanes);
}

// Groups [0, groups) for columns [j0, j0 + batch_count * lanes): tiles of 8 / batch_count groups, then one tile of
// the groups left (at most group_count - 1, chosen by recursion on group_count).
template <std::size_t batch_count, std::size_t group_count = 8 / batch_count>
inline void gemm_nn_row_group_columns(const float* a, std::size_t a_group_stride, const float* b, std::size_t ldb,
                                      std::size_t b_group_stride, float* c, std::size_t c_group_stride,
                                      std::size_t groups, std::size_t j0, std::size_t k) noexcept {
  if constexpr (group_count == 8 / batch_count) {
    std::size_t g = 0;
    for (; g + group_count <= groups; g += group_count)
      gemm_nn_row_group_tile<group_count, batch_count>(a + g * a_group_stride, a_group_stride, b + g * b_group_stride,
                                                       ldb, b_group_stride, c + g * c_group_stride, c_group_stride,
                                                       j0, k);
    if (g < groups)
      gemm_nn_row_group_columns<batch_count, group_count - 1>(
          a + g * a_group_stride, a_group_stride, b + g * b_group_stride, ldb, b_group_stride,
          c + g * c_group_stride, c_group_stride, groups - g, j0, k);
  } else if constexpr (group_count > 0) {
    if (groups == group_count)
      gemm_nn_row_group_tile<group_count, batch_count>(a, a_group_stride, b, ldb, b_group_stride, c, c_group_stride,
                                                       j0, k);
    else
      gemm_nn_row_group_columns<batch_count, group_count - 1>(a, a_group_stride, b, ldb, b_group_stride, c,
                                                              c_group_stride, groups, j0, k);
  }
}
}  // namespace detail
#endif

// c[m, n] = act(a[m, k] · b[n, k]^T + bias[n]); bias may be nullptr.
inline void gemm_nt(const float* a, const float* b, const float* bias, float* c, std::size_t m, std::size_t n,
                    std::size_t k, Activation activation = Activation::none) noexcept {
#if RECLITE_HAS_SIMD
  constexpr std::size_t a_rows = detail::gemm_nt_a_rows;
  constexpr std::size_t b_rows = detail::gemm_nt_b_rows;
  const std::size_t m_tiled = m - m % a_rows;
  const std::size_t n_tiled = n - n % b_rows;
  for (std::size_t i = 0; i < m_tiled; i += a_rows)
    for (std::size_t j = 0; j < n_tiled; j += b_rows)
      detail::gemm_nt_tile(a, b, bias, c, i, j, n, k, std::make_index_sequence<simd::Batch<float>::size>{});
  // Edges: the last n % 4 columns of the tiled rows, then whole rows past the last tile.
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = (i < m_tiled ? n_tiled : 0); j < n; ++j)
      c[i * n + j] = dot(a + i * k, b + j * k, k) + (bias ? bias[j] : 0.0f);
  apply_activation(activation, c, c, m * n);
#else
  reference::gemm_nt(a, b, bias, c, m, n, k, activation);
#endif
}

// c[m, n] = a[m, k] · b[k, n] with row strides: a row i at a + i * lda, b row p at b + p * ldb, c row i at
// c + i * ldc (attention reads heads in place this way: Q·K^T against transposed keys, weights·V).
inline void gemm_nn(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                    std::size_t m, std::size_t n, std::size_t k) noexcept {
#if RECLITE_HAS_SIMD
  const std::size_t m_tiled = m - m % 4;
  for (std::size_t i = 0; i < m_tiled; i += 4) detail::gemm_nn_rows<4>(a, lda, b, ldb, c, ldc, i, n, k);
  for (std::size_t i = m_tiled; i < m; ++i) detail::gemm_nn_rows<1>(a, lda, b, ldb, c, ldc, i, n, k);
#else
  reference::gemm_nn(a, lda, b, ldb, c, ldc, m, n, k);
#endif
}

// c[m, n] = a[m, k] · b[k, n], all dense.
inline void gemm_nn(const float* a, const float* b, float* c, std::size_t m, std::size_t n, std::size_t k) noexcept {
  gemm_nn(a, k, b, n, c, n, m, n, k);
}

// For g < groups: row c_g[0, n) = a_g[0, k) · b_g[k, n], with a_g = a + g * a_group_stride, b_g = b +
// g * b_group_stride (row p at b_g + p * ldb) and c_g = c + g * c_group_stride; e.g. one query's scores
// against every head's transposed keys, or every head's attention weights times its slice of V. Each row equals
// gemm_nn(a_g, k, b_g, ldb, c_g, n, 1, n, k) exactly.
inline void gemm_nn_row_groups(const float* a, std::size_t a_group_stride, const float* b, std::size_t ldb,
                               std::size_t b_group_stride, float* c, std::size_t c_group_stride, std::size_t groups,
                               std::size_t n, std::size_t k) noexcept {
#if RECLITE_HAS_SIMD
  constexpr std::size_t lanes = simd::Batch<float>::size;
  const std::size_t batches = n / lanes;
  std::size_t batch = 0;
  for (; batch + 4 <= batches; batch += 4)
    detail::gemm_nn_row_group_columns<4>(a, a_group_stride, b, ldb, b_group_stride, c, c_group_stride, groups,
                                         batch * lanes, k);
  if (batch + 2 <= batches) {
    detail::gemm_nn_row_group_columns<2>(a, a_group_stride, b, ldb, b_group_stride, c, c_group_stride, groups,
                                         batch * lanes, k);
    batch += 2;
  }
  if (batch < batches)
    detail::gemm_nn_row_group_columns<1>(a, a_group_stride, b, ldb, b_group_stride, c, c_group_stride, groups,
                                         batch * lanes, k);
  // Columns past the last whole batch, summed as gemm_nn sums them.
  for (std::size_t g = 0; g < groups; ++g) {
    const float* a_row = a + g * a_group_stride;
    const float* b_group = b + g * b_group_stride;
    float* c_row = c + g * c_group_stride;
    for (std::size_t column = batches * lanes; column < n; ++column) {
      float sum = 0.0f;
      for (std::size_t p = 0; p < k; ++p) sum += a_row[p] * b_group[p * ldb + column];
      c_row[column] = sum;
    }
  }
#else
  reference::gemm_nn_row_groups(a, a_group_stride, b, ldb, b_group_stride, c, c_group_stride, groups, n, k);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
