// The only header that names xsimd. Everything else in ops/ uses simd::Batch and the wrappers below
// (fma, reduce_add, reduce_add_rows, max, min, abs, select, exp, tanh, erf).
// RECLITE_HAS_SIMD is 0 under RECLITE_FORCE_SCALAR, or when xsimd finds no instruction set in the compiler
// flags (xsimd 8.1 then defines XSIMD_NO_SUPPORTED_ARCHITECTURE and has no batch type at all); kernels then
// run their scalar reference. The instruction set comes from the consumer's flags (-mavx2, -march=native, NEON).
#pragma once

#include <type_traits>

#include "reclite/core/config.hpp"

#if !defined(RECLITE_FORCE_SCALAR) || !RECLITE_FORCE_SCALAR
#include <xsimd/xsimd.hpp>
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#define RECLITE_HAS_SIMD 0
#else
#define RECLITE_HAS_SIMD 1
#endif
#else
#define RECLITE_HAS_SIMD 0
#endif

RECLITE_BEGIN_NAMESPACE
namespace ops {
namespace simd {

#if RECLITE_HAS_SIMD
// GCC 12 reports its own AVX-512 intrinsics (the _mm512_undefined_* they pass through) as maybe
// uninitialised once these wrappers (max, exp, tanh, erf, the reductions) are inlined (GCC PR105593,
// fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

template <class T>
using Batch = xsimd::batch<T, xsimd::default_arch>;

template <class T>
inline Batch<T> fma(const Batch<T>& a, const Batch<T>& b, const Batch<T>& c) noexcept {
  return xsimd::fma(a, b, c);
}

// Sum of the lanes (xsimd 8.1 calls it hadd; later versions renamed it reduce_add).
template <class T>
inline T reduce_add(const Batch<T>& lanes) noexcept {
  return xsimd::hadd(lanes);
}

template <class T>
inline T reduce_max(const Batch<T>& lanes) noexcept {
  alignas(64) T values[Batch<T>::size];
  lanes.store_aligned(values);
  T best = values[0];
  for (std::size_t i = 1; i < Batch<T>::size; ++i) best = values[i] > best ? values[i] : best;
  return best;
}

template <class T>
inline Batch<T> max(const Batch<T>& a, const Batch<T>& b) noexcept {
  return xsimd::max(a, b);
}

template <class T>
inline Batch<T> min(const Batch<T>& a, const Batch<T>& b) noexcept {
  return xsimd::min(a, b);
}

template <class T>
inline Batch<T> abs(const Batch<T>& x) noexcept {
  return xsimd::abs(x);
}

// Lane-wise condition ? if_true : if_false; condition comes from a comparison of batches.
template <class Condition, class T>
inline Batch<T> select(const Condition& condition, const Batch<T>& if_true, const Batch<T>& if_false) noexcept {
  return xsimd::select(condition, if_true, if_false);
}


// xsimd's elementary functions (Cephes/Boost.SIMD-derived polynomials, within a few ulp of libm for float;
// exp gives +inf above ~88.7 and 0 below ~-103.9, as libm does).
template <class T>
inline Batch<T> exp(const Batch<T>& x) noexcept {
  return xsimd::exp(x);
}

template <class T>
inline Batch<T> tanh(const Batch<T>& x) noexcept {
  return xsimd::tanh(x);
}

template <class T>
inline Batch<T> erf(const Batch<T>& x) noexcept {
  return xsimd::erf(x);
}

#if defined(__AVX512F__)
namespace detail {
// Eight rows of 8 floats to their 8 sums: two rounds of pairwise horizontal adds, then the 128-bit halves.
inline __m256 reduce_add_rows_avx(const __m256* rows) noexcept {
  const __m256 pairs01 = _mm256_hadd_ps(rows[0], rows[1]);
  const __m256 pairs23 = _mm256_hadd_ps(rows[2], rows[3]);
  const __m256 pairs45 = _mm256_hadd_ps(rows[4], rows[5]);
  const __m256 pairs67 = _mm256_hadd_ps(rows[6], rows[7]);
  const __m256 quads0123 = _mm256_hadd_ps(pairs01, pairs23);  // rows 0-3: low half sums | high half sums
  const __m256 quads4567 = _mm256_hadd_ps(pairs45, pairs67);
  return _mm256_add_ps(_mm256_permute2f128_ps(quads0123, quads4567, 0x20),
                       _mm256_permute2f128_ps(quads0123, quads4567, 0x31));
}

// xsimd 8.1's AVX-512 haddp returns lanes 2-5 and 10-13 in the wrong order, so AVX-512 uses this one:
// fold each 512-bit row to 256 bits, then two 8-row trees.
inline __m512 reduce_add_rows_avx512(const Batch<float>* rows) noexcept {
  __m256 halves[16];
  for (int row = 0; row < 16; ++row) {
    const __m512 value = rows[row];
    halves[row] = _mm256_add_ps(_mm512_castps512_ps256(value),
                                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1)));
  }
  const __m256 low = reduce_add_rows_avx(halves);
  const __m256 high = reduce_add_rows_avx(halves + 8);
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
}
}  // namespace detail
#endif

// rows points at Batch<T>::size batches; lane j of the result is the sum of the lanes of rows[j].
// One transpose-and-add tree instead of size separate horizontal sums (used by gemv and gemm_nt).
template <class T>
inline Batch<T> reduce_add_rows(const Batch<T>* rows) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value && Batch<T>::size == 16) {
    return Batch<T>(detail::reduce_add_rows_avx512(rows));
  } else {
    return xsimd::haddp(rows);
  }
#else
  return xsimd::haddp(rows);
#endif
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Name of the instruction set in use, for benchmarks and `reclite inspect`.
inline const char* instruction_set_name() noexcept { return xsimd::default_arch::name(); }
#else
inline const char* instruction_set_name() noexcept { return "scalar"; }
#endif

}  // namespace simd
}  // namespace ops
RECLITE_END_NAMESPACE
