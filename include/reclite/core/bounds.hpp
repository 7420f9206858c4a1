// Overflow-free range and size arithmetic for everything read from untrusted files.
// Every count read from a file is bounded by the bytes left before it sizes a loop or an allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "reclite/core/config.hpp"

RECLITE_BEGIN_NAMESPACE

// [offset, offset + need) lies inside `size` bytes; never computes offset + need.
constexpr bool fits(std::size_t offset, std::size_t need, std::size_t size) noexcept {
  return offset <= size && need <= size - offset;
}

// a * b without overflow; false when the product does not fit in size_t.
constexpr bool checked_multiply(std::size_t a, std::size_t b, std::size_t* product) noexcept {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return false;
  *product = a * b;
  return true;
}

RECLITE_END_NAMESPACE
