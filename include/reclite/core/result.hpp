// Result<T>: a T or an Error. The one error policy of the public API: no exception crosses it.
// Reading the value of a failed Result (or the error of a good one) is a caller bug, caught by RECLITE_ASSERT.
#pragma once

#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "reclite/core/config.hpp"
#include "reclite/core/error.hpp"

RECLITE_BEGIN_NAMESPACE

template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_reference<T>::value, "Result holds values");

 public:
  Result(T value) : has_value_(true) { new (&storage_.value) T(std::move(value)); }  // NOLINT: implicit by design
  Result(Error error) : has_value_(false) { new (&storage_.error) Error(std::move(error)); }  // NOLINT

  Result(Result&& other) noexcept(std::is_nothrow_move_constructible<T>::value) : has_value_(other.has_value_) {
    if (has_value_)
      new (&storage_.value) T(std::move(other.storage_.value));
    else
      new (&storage_.error) Error(std::move(other.storage_.error));
  }
  Result(const Result& other) : has_value_(other.has_value_) {
    if (has_value_)
      new (&storage_.value) T(other.storage_.value);
    else
      new (&storage_.error) Error(other.storage_.error);
  }
  Result& operator=(Result other) {
    destroy();
    has_value_ = other.has_value_;
    if (has_value_)
      new (&storage_.value) T(std::move(other.storage_.value));
    else
      new (&storage_.error) Error(std::move(other.storage_.error));
    return *this;
  }
  ~Result() { destroy(); }

  bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }

  T& value() & { RECLITE_ASSERT(has_value_); return storage_.value; }
  const T& value() const& { RECLITE_ASSERT(has_value_); return storage_.value; }
  T&& value() && { RECLITE_ASSERT(has_value_); return std::move(storage_.value); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { RECLITE_ASSERT(!has_value_); return storage_.error; }
  Error&& error() && { RECLITE_ASSERT(!has_value_); return std::move(storage_.error); }

 private:
  void destroy() noexcept {
    if (has_value_)
      storage_.value.~T();
    else
      storage_.error.~Error();
  }
  union Storage {
    Storage() {}
    ~Storage() {}
    T value;
    Error error;
  } storage_;
  bool has_value_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : has_error_(true), error_(std::move(error)) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return !has_error_; }
  explicit operator bool() const noexcept { return !has_error_; }
  void value() const { RECLITE_ASSERT(!has_error_); }
  const Error& error() const& { RECLITE_ASSERT(has_error_); return error_; }
  Error&& error() && { RECLITE_ASSERT(has_error_); return std::move(error_); }

 private:
  bool has_error_ = false;
  Error error_{ErrorCode::invalid_argument, std::string()};
};

// Shorthand for building an error result: `return fail(ErrorCode::tensor_shape, "...")`.
inline Error fail(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

// Early return of a failed Result<U> from a function returning Result<T>.
#define RECLITE_TRY(expression)                                  \
  do {                                                           \
    auto&& reclite_try_result_ = (expression);                   \
    if (!reclite_try_result_) return reclite_try_result_.error(); \
  } while (false)

RECLITE_END_NAMESPACE
