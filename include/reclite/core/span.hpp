// Span<T>: a pointer and a length, C++17's missing std::span (only what reclite needs).
// Never owns; the caller keeps the memory alive.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "reclite/core/config.hpp"

RECLITE_BEGIN_NAMESPACE

template <class T>
class Span {
 public:
  constexpr Span() noexcept = default;
  constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  template <class U, class = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value>>
  Span(std::vector<U>& values) noexcept : data_(values.data()), size_(values.size()) {}  // NOLINT
  template <class U, class = std::enable_if_t<std::is_convertible<const U (*)[], T (*)[]>::value>>
  Span(const std::vector<U>& values) noexcept : data_(values.data()), size_(values.size()) {}  // NOLINT
  template <class U, class = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value>>
  constexpr Span(Span<U> other) noexcept : data_(other.data()), size_(other.size()) {}  // NOLINT
  template <std::size_t N>
  constexpr Span(T (&values)[N]) noexcept : data_(values), size_(N) {}  // NOLINT

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
  constexpr T* begin() const noexcept { return data_; }
  constexpr T* end() const noexcept { return data_ + size_; }
  // Elements [offset, offset + count); the caller keeps it in range.
  constexpr Span subspan(std::size_t offset, std::size_t count) const noexcept { return Span(data_ + offset, count); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

RECLITE_END_NAMESPACE
