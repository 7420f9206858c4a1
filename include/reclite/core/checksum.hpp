// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum zlib.crc32 computes, so the Python
// converter writes it with the standard library and C++ checks it here. Slicing-by-8: about 1-2 GB/s,
// a few milliseconds for a 100k-item model, paid once at load.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "reclite/core/config.hpp"

RECLITE_BEGIN_NAMESPACE

namespace detail {
struct Crc32Tables {
  std::uint32_t table[8][256];
  constexpr Crc32Tables() : table{} {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t value = i;
      for (int bit = 0; bit < 8; ++bit) value = (value & 1u) ? (value >> 1) ^ 0xEDB88320u : value >> 1;
      table[0][i] = value;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int slice = 1; slice < 8; ++slice)
        table[slice][i] = (table[slice - 1][i] >> 8) ^ table[0][table[slice - 1][i] & 0xFFu];
  }
};
inline constexpr Crc32Tables crc32_tables{};
}  // namespace detail

// Continues a CRC-32 over `size` more bytes; start with crc = 0 (zlib's convention).
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept {
  const auto& t = detail::crc32_tables.table;
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  while (size >= 8) {
    std::uint32_t low = crc ^ (static_cast<std::uint32_t>(bytes[0]) | static_cast<std::uint32_t>(bytes[1]) << 8 |
                               static_cast<std::uint32_t>(bytes[2]) << 16 | static_cast<std::uint32_t>(bytes[3]) << 24);
    crc = t[7][low & 0xFFu] ^ t[6][(low >> 8) & 0xFFu] ^ t[5][(low >> 16) & 0xFFu] ^ t[4][low >> 24] ^
          t[3][bytes[4]] ^ t[2][bytes[5]] ^ t[1][bytes[6]] ^ t[0][bytes[7]];
    bytes += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *bytes++) & 0xFFu];
  return ~crc;
}

RECLITE_END_NAMESPACE
