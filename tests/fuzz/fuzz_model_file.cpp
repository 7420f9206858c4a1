// libFuzzer target: any bytes given to Model::from_buffer either fail with an Error or give a model that can be
// evaluated without reading out of bounds (run under ASan + UBSan). CRC-32s are checked for inputs of even size
// only, so mutations inside tensor data also reach the semantic checks and evaluation; real model files are
// valid seeds as they are.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "reclite/reclite.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reclite::LoadOptions options;
  options.verify_checksums = size % 2 == 0;
  // Model buffers must be 8-byte aligned; libFuzzer's are not guaranteed to be.
  std::vector<std::uint64_t> aligned(size / 8 + 1);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  auto loaded = reclite::Model::from_buffer(aligned.data(), size, "fuzz.reclite", options);
  if (!loaded) return 0;
  const reclite::Model& model = *loaded;
  reclite::Session session(model);
  const auto& fields = model.user_fields();
  std::vector<std::int64_t> zero(1, 0);
  std::vector<std::int64_t> history;
  for (std::size_t entry = 0; entry < model.catalogue().size() && entry < 60; ++entry)
    history.push_back(model.catalogue().external_id(entry));
  std::vector<std::vector<float>> dense(fields.size());
  std::vector<reclite::FieldInput> request(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i]->kind == reclite::format::FieldKind::categorical) {
      request[i].ids = reclite::Span<const std::int64_t>(zero.data(), 1);
    } else if (fields[i]->kind == reclite::format::FieldKind::history) {
      request[i].ids = reclite::Span<const std::int64_t>(history.data(), history.size());
    } else {
      dense[i].assign(fields[i]->width, 0.5f);
      request[i].values = reclite::Span<const float>(dense[i].data(), dense[i].size());
    }
  }
  std::vector<float> user(model.user_dim() * model.user_vector_count());
  (void)session.encode_user(request, user);
  std::vector<float> item(model.item_dim());
  for (std::size_t entry = 0; entry < model.catalogue().size() && entry < 8; ++entry)
    (void)session.encode_item(model.catalogue().external_id(entry), item);
  (void)model.run_self_test();
  return 0;
}
