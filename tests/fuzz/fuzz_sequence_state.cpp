// libFuzzer target: bytes given to SequenceSession::restore either fail with an Error or give a state that
// appends, serialises and restores again to the same user vector (run under ASan + UBSan).
//
// Random bytes almost never carry the model's fingerprint and a matching CRC, so most inputs are turned into
// a real state first: the input picks a history (known and unknown ids, shorter and longer than the window),
// the state it gives is serialised, the input's remaining bytes are XORed over those bytes (and may cut or
// extend them), and the CRC is recomputed for half of the inputs so the checks behind it are reached too.
// Inputs starting with 0xFF are restored as they are.
//
// The model: $RECLITE_FUZZ_SASREC_MODEL, else the RecBole fixture the ctest fixture step writes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "reclite/reclite.hpp"

#ifndef RECLITE_FUZZ_SASREC_MODEL
#define RECLITE_FUZZ_SASREC_MODEL ""
#endif

namespace {

const reclite::Model* fuzz_model = nullptr;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_sequence_state: %s\n", what);
  std::abort();
}

void put_crc(std::vector<std::uint8_t>& bytes) {
  if (bytes.size() < 4) return;
  const std::uint32_t crc = reclite::crc32(bytes.data(), bytes.size() - 4);
  for (std::size_t i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
}

// Restored states must survive an append and a serialise-restore round trip with the same user vector.
void exercise(reclite::SequenceSession& sequences, reclite::SequenceState& state) {
  const reclite::Model& model = sequences.model();
  (void)sequences.append(state, model.catalogue().external_id(0));
  (void)sequences.append(state, -7);  // unknown: skipped
  const std::vector<std::uint8_t> saved = state.serialize();
  auto again = sequences.restore(reclite::Span<const std::uint8_t>(saved.data(), saved.size()));
  if (!again) broken("a serialised state does not restore");
  if (again->has_user_vector() != state.has_user_vector()) broken("restored state lost its user vector");
  if (state.has_user_vector()) {
    const auto a = state.user_vector(), b = again->user_vector();
    if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0)
      broken("restored user vector differs from the saved state's");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* path = std::getenv("RECLITE_FUZZ_SASREC_MODEL");
  if (path == nullptr || *path == '\0') path = RECLITE_FUZZ_SASREC_MODEL;
  auto loaded = reclite::Model::load(path);
  if (!loaded) {
    std::fprintf(stderr, "fuzz_sequence_state: %s\n", loaded.error().describe().c_str());
    std::exit(1);
  }
  fuzz_model = new reclite::Model(std::move(*loaded));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static auto sequences = std::make_unique<reclite::SequenceSession>(std::move(*reclite::SequenceSession::create(*fuzz_model)));
  if (size == 0) return 0;
  std::vector<std::uint8_t> bytes;
  if (data[0] == 0xFF) {
    bytes.assign(data + 1, data + size);
  } else {
    // data[0]: history length (0..window+7) and whether to fix the CRC; data[1..]: ids, then the overlay.
    const std::size_t window = fuzz_model->file().sasrec()->max_length;
    const std::size_t length = (data[0] >> 1) % (window + 8);
    const bool fix_crc = (data[0] & 1) != 0;
    const auto& catalogue = fuzz_model->catalogue();
    std::vector<std::int64_t> history;
    std::size_t at = 1;
    for (std::size_t i = 0; i < length; ++i, ++at) {
      const std::uint8_t pick = at < size ? data[at] : static_cast<std::uint8_t>(i);
      history.push_back(pick == 0xEE ? -1 : catalogue.external_id(pick % catalogue.size()));
    }
    auto started = sequences->start(reclite::Span<const std::int64_t>(history.data(), history.size()));
    if (!started) broken("start refused a history");
    bytes = started->serialize();
    // Overlay: the first byte after the ids resizes (0: keep; else cut or extend by up to 127 bytes), the rest XOR.
    if (at < size) {
      const auto resize = static_cast<std::int8_t>(data[at++]);
      const std::ptrdiff_t wanted = static_cast<std::ptrdiff_t>(bytes.size()) + resize;
      if (resize != 0) bytes.resize(static_cast<std::size_t>(wanted < 0 ? 0 : wanted), 0);
    }
    for (std::size_t i = 0; at < size && !bytes.empty(); ++i, ++at) bytes[i % bytes.size()] ^= data[at];
    if (fix_crc) put_crc(bytes);
  }
  auto restored = sequences->restore(reclite::Span<const std::uint8_t>(bytes.data(), bytes.size()));
  if (restored) exercise(*sequences, *restored);
  return 0;
}
