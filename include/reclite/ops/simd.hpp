// The only header that names xsimd. Everything else in ops/ uses simd::Batch, simd::fma, simd::reduce_add.
// RECLITE_HAS_SIMD is 0 under RECLITE_FORCE_SCALAR, or when xsimd finds no instruction set in the compiler
// flags (xsimd 8.1 then defines XSIMD_NO_SUPPORTED_ARCHITECTURE and has no batch type at all); kernels then
// run their scalar reference. The instruction set comes from the consumer's flags (-mavx2, -march=native, NEON).
#pragma once

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

// Name of the instruction set in use, for benchmarks and `reclite inspect`.
inline const char* instruction_set_name() noexcept { return xsimd::default_arch::name(); }
#else
inline const char* instruction_set_name() noexcept { return "scalar"; }
#endif

}  // namespace simd
}  // namespace ops
RECLITE_END_NAMESPACE
