#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "reclite/core/mapped_file.hpp"

TEST_CASE("core/mapped_file: maps a file read-only") {
  const std::string path = "mapped_file_test.bin";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  REQUIRE(out != nullptr);
  std::fputs("hello", out);
  std::fclose(out);
  auto file = reclite::MappedFile::open(path);
  REQUIRE(file);
  CHECK(file->size() == 5);
  CHECK(file->is_memory_mapped());
  CHECK(std::string(reinterpret_cast<const char*>(file->data()), 5) == "hello");
  reclite::MappedFile moved = std::move(*file);
  CHECK(moved.size() == 5);
  std::remove(path.c_str());
}

TEST_CASE("core/mapped_file: missing file and directory give clear errors") {
  auto missing = reclite::MappedFile::open("no/such/file.reclite");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == reclite::ErrorCode::file_not_found);
  CHECK(missing.error().message.find("no/such/file.reclite") != std::string::npos);
  auto directory = reclite::MappedFile::open(".");
  REQUIRE_FALSE(directory);
  CHECK(directory.error().code == reclite::ErrorCode::io_error);
}

TEST_CASE("core/mapped_file: an empty file maps to zero bytes") {
  const std::string path = "mapped_file_empty.bin";
  std::fclose(std::fopen(path.c_str(), "wb"));
  auto file = reclite::MappedFile::open(path);
  REQUIRE(file);
  CHECK(file->size() == 0);
  std::remove(path.c_str());
}
