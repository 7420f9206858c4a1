// The only header that names xsimd. Everything else in ops/ uses simd::Batch and the wrappers below
// (fma, reduce_add, reduce_add_rows, max, min, abs, all, select, exp, tanh, erf), and dot_int8_rows16, the one
// helper written with x86 intrinsics (xsimd 8.1 has no widening int8 multiply-add).
// RECLITE_HAS_SIMD is 0 under RECLITE_FORCE_SCALAR, or when xsimd finds no instruction set in the compiler
// flags (xsimd 8.1 then defines XSIMD_NO_SUPPORTED_ARCHITECTURE and has no batch type at all); kernels then
// run their scalar reference. The instruction set comes from the consumer's flags (-mavx2, -march=native, NEON).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
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
// fixed in GCC 13). The pragma only covers code inlined into these wrappers, so exp and erf are flattened: with
// many callers (each fused activation of ops::linear), GCC would otherwise keep one out-of-line copy of xsimd's exp
// kernel, outside the pragma, and warn there.
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

// True when every lane of a comparison holds.
template <class Condition>
inline bool all(const Condition& condition) noexcept {
  return xsimd::all(condition);
}

// Lane-wise condition ? if_true : if_false; condition comes from a comparison of batches.
template <class Condition, class T>
inline Batch<T> select(const Condition& condition, const Batch<T>& if_true, const Batch<T>& if_false) noexcept {
  return xsimd::select(condition, if_true, if_false);
}


// xsimd's elementary functions (Cephes/Boost.SIMD-derived polynomials, within a few ulp of libm for float;
// exp gives +inf above ~88.7 and 0 below ~-103.9, as libm does).
template <class T>
[[gnu::flatten]] inline Batch<T> exp(const Batch<T>& x) noexcept {
  return xsimd::exp(x);
}

template <class T>
inline Batch<T> tanh(const Batch<T>& x) noexcept {
  return xsimd::tanh(x);
}

template <class T>
[[gnu::flatten]] inline Batch<T> erf(const Batch<T>& x) noexcept {
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

// Integer dot products of 16 interleaved int8 rows with one int8 query (the layout of ops/quantized_dot.hpp:
// per group of 4 columns, 64 bytes = 16 rows x 4 columns). Values must lie in [-127, 127]. Exact int32 sums.
// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, so row bytes are flipped to q + 128 (xor 0x80)
// and 128 * sum(query) is subtracted once at the end. AVX2 (and AVX-512 without VNNI): the sign trick,
// |q| * (sign(q) * u) with vpmaddubsw, whose pair sums (at most 2 * 127 * 127 = 32258) never saturate, then
// vpmaddwd to int32. Other instruction sets have no helper (RECLITE_HAS_INT8_ROWS16 0): the kernel's
// portable loop runs there.
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define RECLITE_HAS_INT8_ROWS16 1
inline void dot_int8_rows16(const std::int8_t* query, const std::int8_t* blocks, std::int32_t* out,
                            std::size_t groups, std::size_t block_count) noexcept {
  std::int32_t query_sum = 0;
  for (std::size_t j = 0; j < 4 * groups; ++j) query_sum += query[j];
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i correction = _mm512_set1_epi32(128 * query_sum);
  auto query_group = [query](std::size_t group) noexcept {
    std::int32_t four;
    std::memcpy(&four, query + 4 * group, 4);
    return _mm512_set1_epi32(four);
  };
  for (std::size_t block = 0; block < block_count; ++block) {
    const std::int8_t* rows = blocks + block * groups * 64;
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    __m512i sum2 = _mm512_setzero_si512(), sum3 = _mm512_setzero_si512();
    std::size_t group = 0;
    for (; group + 4 <= groups; group += 4) {
      const std::int8_t* at = rows + group * 64;
      sum0 = _mm512_dpbusd_epi32(sum0, _mm512_xor_si512(_mm512_loadu_si512(at), flip), query_group(group));
      sum1 = _mm512_dpbusd_epi32(sum1, _mm512_xor_si512(_mm512_loadu_si512(at + 64), flip), query_group(group + 1));
      sum2 = _mm512_dpbusd_epi32(sum2, _mm512_xor_si512(_mm512_loadu_si512(at + 128), flip), query_group(group + 2));
      sum3 = _mm512_dpbusd_epi32(sum3, _mm512_xor_si512(_mm512_loadu_si512(at + 192), flip), query_group(group + 3));
    }
    for (; group < groups; ++group)
      sum0 = _mm512_dpbusd_epi32(sum0, _mm512_xor_si512(_mm512_loadu_si512(rows + group * 64), flip),
                                 query_group(group));
    const __m512i sum = _mm512_sub_epi32(
        _mm512_add_epi32(_mm512_add_epi32(sum0, sum1), _mm512_add_epi32(sum2, sum3)), correction);
    _mm512_storeu_si512(out + 16 * block, sum);
  }
}
#elif defined(__AVX2__)
#define RECLITE_HAS_INT8_ROWS16 1
inline void dot_int8_rows16(const std::int8_t* query, const std::int8_t* blocks, std::int32_t* out,
                            std::size_t groups, std::size_t block_count) noexcept {
  const __m256i ones = _mm256_set1_epi16(1);
  // Lanes of 8 rows x 4 columns: |q| * (sign(q) * u) summed in pairs (int16), then in pairs again (int32).
  auto multiply_add = [ones](__m256i sum, __m256i rows, __m256i query_four) noexcept {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(rows, rows), _mm256_sign_epi8(query_four, rows));
    return _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
  };
  for (std::size_t block = 0; block < block_count; ++block) {
    const std::int8_t* rows = blocks + block * groups * 64;
    __m256i low0 = _mm256_setzero_si256(), high0 = _mm256_setzero_si256();
    __m256i low1 = _mm256_setzero_si256(), high1 = _mm256_setzero_si256();
    std::size_t group = 0;
    for (; group + 2 <= groups; group += 2) {
      std::int32_t four0, four1;
      std::memcpy(&four0, query + 4 * group, 4);
      std::memcpy(&four1, query + 4 * group + 4, 4);
      const __m256i query0 = _mm256_set1_epi32(four0), query1 = _mm256_set1_epi32(four1);
      const std::int8_t* at = rows + group * 64;
      low0 = multiply_add(low0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)), query0);
      high0 = multiply_add(high0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32)), query0);
      low1 = multiply_add(low1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 64)), query1);
      high1 = multiply_add(high1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 96)), query1);
    }
    if (group < groups) {
      std::int32_t four;
      std::memcpy(&four, query + 4 * group, 4);
      const __m256i query0 = _mm256_set1_epi32(four);
      const std::int8_t* at = rows + group * 64;
      low0 = multiply_add(low0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)), query0);
      high0 = multiply_add(high0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 32)), query0);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * block), _mm256_add_epi32(low0, low1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * block + 8), _mm256_add_epi32(high0, high1));
  }
}
#else
#define RECLITE_HAS_INT8_ROWS16 0
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Name of the instruction set in use, for benchmarks and `reclite inspect`.
inline const char* instruction_set_name() noexcept { return xsimd::default_arch::name(); }
#else
inline const char* instruction_set_name() noexcept { return "scalar"; }
#endif

#if !RECLITE_HAS_SIMD
#define RECLITE_HAS_INT8_ROWS16 0
#endif

}  // namespace simd
}  // namespace ops
RECLITE_END_NAMESPACE
