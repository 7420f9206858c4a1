// The positions of the values that are not below a threshold (value >= threshold, or NaN), in increasing
// order: the candidate selection of exact search's compact first pass (index/exact_search.hpp), where almost
// every value is below and only a few positions survive.
// Invariants: values holds n floats, any alignment; indices has room for n. Never allocates.
// The SIMD path tests a whole batch with one comparison and looks at single values only in batches holding a
// survivor; comparisons do not round, so it equals the reference exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"
#include "reclite/ops/simd.hpp"

RECLITE_BEGIN_NAMESPACE
namespace ops {

namespace reference {
// Writes i for every i < n with !(values[i] < threshold); returns how many.
inline std::size_t indices_not_below(const float* values, float threshold, std::uint32_t* indices,
                                     std::size_t n) noexcept {
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!(values[i] < threshold)) indices[count++] = static_cast<std::uint32_t>(i);
  return count;
}
}  // namespace reference

// Same as the reference.
inline std::size_t indices_not_below(const float* values, float threshold, std::uint32_t* indices,
                                     std::size_t n) noexcept {
#if RECLITE_HAS_SIMD
  using Batch = simd::Batch<float>;
  const Batch limit(threshold);
  std::size_t count = 0, i = 0;
  for (; i + Batch::size <= n; i += Batch::size) {
    if (simd::all(Batch::load_unaligned(values + i) < limit)) continue;
    for (std::size_t j = i; j < i + Batch::size; ++j)
      if (!(values[j] < threshold)) indices[count++] = static_cast<std::uint32_t>(j);
  }
  for (; i < n; ++i)  // tail
    if (!(values[i] < threshold)) indices[count++] = static_cast<std::uint32_t>(i);
  return count;
#else
  return reference::indices_not_below(values, threshold, indices, n);
#endif
}

}  // namespace ops
RECLITE_END_NAMESPACE
