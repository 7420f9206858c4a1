// The README's example: load a model, encode one user, recall the top 10 items from its index.
// Usage: quickstart MODEL.reclite INDEX.rlindex
#include <cstdint>
#include <cstdio>
#include <vector>

#include "reclite/index/hnsw_index.hpp"
#include "reclite/reclite.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: quickstart MODEL.reclite INDEX.rlindex\n");
    return 2;
  }
  auto loaded = reclite::Model::load(argv[1]);  // memory-mapped and verified; Result<Model>
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().describe().c_str());
    return 1;
  }
  const reclite::Model& model = *loaded;  // immutable: share it between threads
  auto index = reclite::index::HnswIndex::open(argv[2]);
  if (!index) {
    std::fprintf(stderr, "%s\n", index.error().describe().c_str());
    return 1;
  }

  // One FieldInput per user field, in model.user_fields() order. Here: the first value of every categorical
  // field, and for histories the first three catalogue items.
  std::vector<std::int64_t> values(model.user_fields().size(), 0);
  std::vector<std::int64_t> history;
  for (std::size_t entry = 0; entry < 3 && entry < model.catalogue().size(); ++entry)
    history.push_back(model.catalogue().external_id(entry));
  std::vector<std::vector<float>> dense(model.user_fields().size());
  std::vector<reclite::FieldInput> request(model.user_fields().size());
  for (std::size_t i = 0; i < request.size(); ++i) {
    const auto& field = *model.user_fields()[i];
    if (field.kind == reclite::format::FieldKind::categorical) {
      request[i].ids = reclite::Span<const std::int64_t>(&values[i], 1);
    } else if (field.kind == reclite::format::FieldKind::history) {
      request[i].ids = reclite::Span<const std::int64_t>(history.data(), history.size());
    } else {
      dense[i].assign(field.width, 0.0f);
      request[i].values = reclite::Span<const float>(dense[i].data(), dense[i].size());
    }
  }

  reclite::Session session(model);  // one per thread; reuses its memory across requests
  std::vector<float> user(model.user_dim());
  if (auto done = session.encode_user(request, user); !done) {
    std::fprintf(stderr, "%s\n", done.error().describe().c_str());
    return 1;
  }
  std::vector<reclite::index::SearchHit> top(10);
  auto found = index->search_top_k(user.data(), top.size(), history, top);  // history items excluded
  if (!found) {
    std::fprintf(stderr, "%s\n", found.error().describe().c_str());
    return 1;
  }
  for (std::size_t i = 0; i < *found; ++i)
    std::printf("%2zu. item %lld  score %.4f\n", i + 1, static_cast<long long>(top[i].item_id), top[i].score);
  return 0;
}
