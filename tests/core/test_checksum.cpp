#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/bounds.hpp"
#include "reclite/core/checksum.hpp"

TEST_CASE("core/checksum: matches zlib crc32 known values") {
  // zlib.crc32(b"123456789") == 0xCBF43926, the CRC-32 check value.
  CHECK(reclite::crc32("123456789", 9) == 0xCBF43926u);
  CHECK(reclite::crc32("", 0) == 0u);
  CHECK(reclite::crc32("a", 1) == 0xE8B7BE43u);
}

TEST_CASE("core/checksum: continues across split buffers of every tail length") {
  std::vector<std::uint8_t> bytes(1000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 31 + 7);
  const std::uint32_t whole = reclite::crc32(bytes.data(), bytes.size());
  for (std::size_t split : {0, 1, 3, 7, 8, 9, 15, 500, 999, 1000}) {
    CAPTURE(split);
    std::uint32_t first = reclite::crc32(bytes.data(), split);
    CHECK(reclite::crc32(bytes.data() + split, bytes.size() - split, first) == whole);
  }
  bytes[517] ^= 0x10;
  CHECK(reclite::crc32(bytes.data(), bytes.size()) != whole);
}

TEST_CASE("core/bounds: fits and checked_multiply never overflow") {
  constexpr std::size_t max = ~std::size_t{0};
  CHECK(reclite::fits(0, 10, 10));
  CHECK_FALSE(reclite::fits(1, 10, 10));
  CHECK_FALSE(reclite::fits(11, 0, 10));
  CHECK_FALSE(reclite::fits(5, max, 10));
  CHECK_FALSE(reclite::fits(max, 1, 10));
  std::size_t product = 0;
  CHECK(reclite::checked_multiply(1 << 20, 1 << 10, &product));
  CHECK(product == (std::size_t{1} << 30));
  CHECK_FALSE(reclite::checked_multiply(max / 2, 3, &product));
  CHECK(reclite::checked_multiply(0, max, &product));
  CHECK(product == 0);
}
