#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "reclite/core/result.hpp"

namespace {
reclite::Result<int> half(int value) {
  if (value % 2 != 0) return reclite::fail(reclite::ErrorCode::invalid_argument, "odd value " + std::to_string(value));
  return value / 2;
}
reclite::Result<int> quarter(int value) {
  auto first = half(value);
  RECLITE_TRY(first);
  return half(*first);
}
}  // namespace

TEST_CASE("core/result: holds a value or an error") {
  auto good = half(8);
  REQUIRE(good);
  CHECK(*good == 4);
  auto bad = half(3);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == reclite::ErrorCode::invalid_argument);
  CHECK(bad.error().message == "odd value 3");
  CHECK(bad.error().describe() == "invalid_argument: odd value 3");
}

TEST_CASE("core/result: RECLITE_TRY passes the first error up") {
  CHECK(*quarter(8) == 2);
  auto failed = quarter(6);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "odd value 3");
}

TEST_CASE("core/result: move-only values and void results") {
  reclite::Result<std::unique_ptr<int>> owned(std::make_unique<int>(7));
  REQUIRE(owned);
  std::unique_ptr<int> taken = std::move(owned).value();
  CHECK(*taken == 7);
  reclite::Result<void> fine;
  CHECK(fine);
  reclite::Result<void> broken = reclite::fail(reclite::ErrorCode::io_error, "disk");
  CHECK_FALSE(broken);
  CHECK(broken.error().code == reclite::ErrorCode::io_error);
}

TEST_CASE("core/result: every error code has a distinct name") {
  using reclite::ErrorCode;
  const ErrorCode codes[] = {ErrorCode::file_not_found, ErrorCode::not_a_model_file, ErrorCode::corrupt_file,
                             ErrorCode::tensor_shape, ErrorCode::corrupt_index, ErrorCode::index_library_error};
  for (ErrorCode code : codes) CHECK(std::string(reclite::error_code_name(code)) != "unknown_error");
}
