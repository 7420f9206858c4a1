// SequenceState: one user's SASRec history window and what it takes to extend it by one event without
// re-encoding: the window's item rows and external ids, the keys and values of every block at every slot
// (right-padded models only), and the current user vector. SequenceSession (models/sequence_session.hpp) creates
// and updates it; the state itself only stores and serialises.
//
// Serialised form (state format 1), little-endian, everything bounded by the byte count before it is used:
//   offset 0   4 bytes   magic "RCSQ"
//          4   u16       state format version (1)
//          6   u16       reserved, 0
//          8   u64       model fingerprint (SasRecModel::fingerprint: config, tensor CRCs, catalogue)
//         16   u32       max_length of the model
//         20   u32       count of items, <= max_length
//         24   i64[count] external item ids, oldest first
//    24 + 8 count  u32   CRC-32 (zlib) of every byte before it
// Keys, values and the user vector are not stored: they are floats an app must not be able to smuggle in, and
// one re-encode at restore (tens of microseconds) recomputes them exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/bounds.hpp"
#include "reclite/core/checksum.hpp"
#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"

RECLITE_BEGIN_NAMESPACE

// How an append updated the user vector.
enum class UpdatePath : std::uint8_t {
  // Only the new position was computed in each block, against cached keys and values.
  incremental = 0,
  // The window was full: every position shifts, so the window was re-encoded.
  reencode_window_full = 1,
  // Left padding (pmixer, torch-rechub): pads and absolute positions change with every event, so the cached keys
  // would be wrong; the window was re-encoded.
  reencode_padding = 2,
  // The item id is not in the catalogue: skipped (counted in last_stats()), the state is unchanged.
  skipped_unknown_item = 3,
};

constexpr const char* update_path_name(UpdatePath path) noexcept {
  switch (path) {
    case UpdatePath::incremental: return "incremental";
    case UpdatePath::reencode_window_full: return "reencode_window_full";
    case UpdatePath::reencode_padding: return "reencode_padding";
    case UpdatePath::skipped_unknown_item: return "skipped_unknown_item";
  }
  return "unknown";
}

inline constexpr std::uint16_t sequence_state_version = 1;

class SequenceState {
 public:
  static constexpr std::size_t header_size = 24;
  static constexpr std::size_t trailer_size = 4;

  SequenceState() = default;  // bound to no model; SequenceSession::start or restore makes a usable one

  // Known items in the window (at most max_length).
  std::size_t length() const noexcept { return length_; }
  std::size_t max_length() const noexcept { return max_length_; }
  // The window's external item ids, oldest first (e.g. the caller's exclusion list for top-K).
  Span<const std::int64_t> item_ids() const noexcept { return Span<const std::int64_t>(ids_.data(), length_); }
  // False only for a right-padded model (RecBole) with no item yet: it has no output position.
  bool has_user_vector() const noexcept { return has_user_vector_; }
  // The current user vector (hidden_size floats); empty when !has_user_vector().
  Span<const float> user_vector() const noexcept {
    return has_user_vector_ ? Span<const float>(user_vector_.data(), user_vector_.size()) : Span<const float>();
  }
  std::uint64_t model_fingerprint() const noexcept { return fingerprint_; }

  std::size_t serialized_size() const noexcept { return header_size + length_ * 8 + trailer_size; }

  // Writes serialized_size() bytes to `out`; returns how many (output_size if `out` is smaller).
  Result<std::size_t> serialize_to(Span<std::uint8_t> out) const {
    const std::size_t size = serialized_size();
    if (out.size() < size)
      return fail(ErrorCode::output_size, "SequenceState: buffer holds " + std::to_string(out.size()) + " bytes, needs " +
                                              std::to_string(size));
    std::uint8_t* bytes = out.data();
    bytes[0] = 'R';
    bytes[1] = 'C';
    bytes[2] = 'S';
    bytes[3] = 'Q';
    put(bytes + 4, sequence_state_version, 2);
    put(bytes + 6, 0, 2);
    put(bytes + 8, fingerprint_, 8);
    put(bytes + 16, max_length_, 4);
    put(bytes + 20, length_, 4);
    for (std::size_t i = 0; i < length_; ++i) put(bytes + header_size + 8 * i, static_cast<std::uint64_t>(ids_[i]), 8);
    put(bytes + size - trailer_size, crc32(bytes, size - trailer_size), 4);
    return size;
  }

  // The serialised bytes (allocates).
  std::vector<std::uint8_t> serialize() const {
    std::vector<std::uint8_t> bytes(serialized_size());
    auto written = serialize_to(bytes);
    RECLITE_ASSERT(written.has_value());
    (void)written;
    return bytes;
  }

 private:
  friend class SequenceSession;

  static void put(std::uint8_t* at, std::uint64_t value, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < bytes; ++i) at[i] = static_cast<std::uint8_t>(value >> (8 * i));
  }

  std::uint64_t fingerprint_ = 0;
  std::size_t max_length_ = 0;
  std::size_t length_ = 0;
  std::vector<std::uint32_t> rows_;   // [max_length], first length_ used: item table rows, oldest first
  std::vector<std::int64_t> ids_;     // [max_length], first length_ used: external ids
  std::vector<float> keys_;           // [layers][key_cache_floats()]: per head, transposed, slots padded (right padding only)
  std::vector<float> values_;         // [layers][value_cache_floats()]: [max_length][hidden]
  std::vector<float> user_vector_;    // [hidden]
  bool has_user_vector_ = false;
};

namespace detail {

inline std::uint64_t read_little_endian(const std::uint8_t* at, std::size_t bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(at[i]) << (8 * i);
  return value;
}

struct ParsedSequenceState {
  std::uint64_t fingerprint = 0;
  std::uint32_t max_length = 0;
  std::vector<std::int64_t> ids;
};

// Checks serialised state bytes in order: length, magic, version, CRC, count against max_length and against the
// bytes present. Item ids are checked against the model by the caller.
inline Result<ParsedSequenceState> parse_sequence_state(Span<const std::uint8_t> bytes) {
  const std::uint8_t* data = bytes.data();
  const std::size_t size = bytes.size();
  auto corrupt = [](const std::string& what) { return fail(ErrorCode::corrupt_state, "sequence state: " + what); };
  if (size < 8 || data == nullptr)
    return corrupt(std::to_string(size) + " bytes is shorter than the 8-byte magic and version (truncated)");
  if (data[0] != 'R' || data[1] != 'C' || data[2] != 'S' || data[3] != 'Q')
    return corrupt("missing magic 'RCSQ' at byte 0 (not a serialised SequenceState)");
  const auto version = static_cast<std::uint16_t>(read_little_endian(data + 4, 2));
  if (version != sequence_state_version)
    return fail(ErrorCode::unsupported_state_version, "sequence state: format version " + std::to_string(version) +
                                                          ", this reader reads version " +
                                                          std::to_string(sequence_state_version));
  if (size < SequenceState::header_size + SequenceState::trailer_size)
    return corrupt(std::to_string(size) + " bytes is shorter than the " +
                   std::to_string(SequenceState::header_size + SequenceState::trailer_size) + "-byte header and CRC (truncated)");
  ParsedSequenceState parsed;
  parsed.max_length = static_cast<std::uint32_t>(read_little_endian(data + 16, 4));
  const auto count = static_cast<std::uint32_t>(read_little_endian(data + 20, 4));
  // Bound the count by the bytes present before trusting it for anything.
  const std::size_t body = size - SequenceState::header_size - SequenceState::trailer_size;
  if (body % 8 != 0 || body / 8 != count)
    return corrupt("holds " + std::to_string(count) + " items but " + std::to_string(size) + " bytes (" +
                   (body / 8 < count ? "truncated" : "trailing bytes") + ")");
  const std::uint32_t stored_crc = static_cast<std::uint32_t>(read_little_endian(data + size - 4, 4));
  if (crc32(data, size - SequenceState::trailer_size) != stored_crc) return corrupt("CRC-32 does not match (corrupted)");
  if (read_little_endian(data + 6, 2) != 0) return corrupt("reserved field is not 0");
  if (count > parsed.max_length)
    return corrupt(std::to_string(count) + " items exceed the window of " + std::to_string(parsed.max_length));
  parsed.fingerprint = read_little_endian(data + 8, 8);
  parsed.ids.resize(count);
  for (std::size_t i = 0; i < count; ++i)
    parsed.ids[i] = static_cast<std::int64_t>(read_little_endian(data + SequenceState::header_size + 8 * i, 8));
  return parsed;
}

}  // namespace detail

RECLITE_END_NAMESPACE
