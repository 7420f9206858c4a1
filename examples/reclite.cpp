// `reclite`: the command-line face of the engine, for shipping checks and demos.
//   reclite inspect MODEL [--verify]                       header, config, tensors; --verify runs the self-test
//   reclite encode --model M --user U.json                 the user vector(s), JSON
//   reclite recall --model M (--index I | --exact) --user U.json [-k 10] [--keep-seen] [--ef N] [--quota Q]
//   reclite evaluate --model M (--index I | --exact) --users USERS.json [-k 10] [--ef N] [--quota Q]
//   reclite sequence --model M --history ID,ID,... --append ID,ID,... [--save FILE] [--restore FILE]
// USERS.json: [{"fields": {...}, "held_out": [item ids]}, ...]; metrics exclude the items of the user's history.
// Multi-interest models (MIND) recall with one query per active interest, merged (pipeline/multi_interest_recall);
// --quota caps the items one interest may contribute. `sequence` (SASRec) starts a state from the history (or a
// saved state), appends the items one by one and prints each update's path and time, then the user vector.
// Exit status: 0 ok, 1 engine error (printed as code: message), 2 usage.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "json.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/index/hnsw_index.hpp"
#include "reclite/pipeline/multi_interest_recall.hpp"
#include "reclite/reclite.hpp"
#include "request_json.hpp"

namespace {

struct Arguments {
  std::string command, model, index, user, users, positional, history, append, save, restore;
  std::size_t k = 10;
  std::size_t ef = 0;
  std::size_t quota = 0;
  bool exact = false, keep_seen = false, verify = false;
};

int usage() {
  std::fprintf(stderr,
               "usage: reclite inspect MODEL [--verify]\n"
               "       reclite encode --model M --user U.json\n"
               "       reclite recall --model M (--index I | --exact) --user U.json [-k K] [--keep-seen] [--ef N] [--quota Q]\n"
               "       reclite evaluate --model M (--index I | --exact) --users USERS.json [-k K] [--ef N] [--quota Q]\n"
               "       reclite sequence --model M --history ID,ID,... --append ID,ID,... [--save FILE] [--restore FILE]\n");
  return 2;
}

int report(const reclite::Error& error) {
  std::fprintf(stderr, "reclite: %s\n", error.describe().c_str());
  return 1;
}

bool parse_arguments(int argc, char** argv, Arguments& arguments) {
  if (argc < 2) return false;
  arguments.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    auto next = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string number;
    if (flag == "--model") { if (!next(arguments.model)) return false; }
    else if (flag == "--index") { if (!next(arguments.index)) return false; }
    else if (flag == "--user") { if (!next(arguments.user)) return false; }
    else if (flag == "--users") { if (!next(arguments.users)) return false; }
    else if (flag == "-k" || flag == "--k") { if (!next(number)) return false; arguments.k = std::strtoul(number.c_str(), nullptr, 10); }
    else if (flag == "--ef") { if (!next(number)) return false; arguments.ef = std::strtoul(number.c_str(), nullptr, 10); }
    else if (flag == "--quota") { if (!next(number)) return false; arguments.quota = std::strtoul(number.c_str(), nullptr, 10); }
    else if (flag == "--history") { if (!next(arguments.history)) return false; }
    else if (flag == "--append") { if (!next(arguments.append)) return false; }
    else if (flag == "--save") { if (!next(arguments.save)) return false; }
    else if (flag == "--restore") { if (!next(arguments.restore)) return false; }
    else if (flag == "--exact") arguments.exact = true;
    else if (flag == "--keep-seen") arguments.keep_seen = true;
    else if (flag == "--verify") arguments.verify = true;
    else if (!flag.empty() && flag[0] != '-' && arguments.positional.empty()) arguments.positional = flag;
    else return false;
  }
  return true;
}

reclite::Result<tool::Json> read_json(const std::string& path) {
  std::string text;
  if (!tool::read_text_file(path, text)) return reclite::fail(reclite::ErrorCode::file_not_found, path + ": cannot read");
  tool::Json json;
  tool::JsonParser parser(text);
  if (!parser.parse(json)) return reclite::fail(reclite::ErrorCode::invalid_argument, path + ": invalid JSON: " + parser.error());
  return json;
}

std::string shape_text(const std::vector<std::int64_t>& shape) { return reclite::format::shape_string(shape); }

// Sequence models evaluate a window slot by slot; two-tower models pool their histories.
std::string history_text(const reclite::Model& model, const reclite::format::InputFieldConfig& field) {
  const auto architecture = model.architecture();
  const bool window = architecture == reclite::Architecture::sasrec || architecture == reclite::Architecture::mind ||
                      architecture == reclite::Architecture::sdm;
  if (window) return "window of " + std::to_string(field.max_length);
  return "pooling " + std::string(reclite::format::pooling_name(field.pooling)) + " over " + std::to_string(field.max_length);
}

int inspect(const Arguments& arguments) {
  const std::string path = !arguments.positional.empty() ? arguments.positional : arguments.model;
  if (path.empty()) return usage();
  auto loaded = reclite::Model::load(path);
  if (!loaded) return report(loaded.error());
  const reclite::Model& model = *loaded;
  const auto& file = model.file();
  std::printf("file: %s (%zu bytes, %s)\n", path.c_str(), file.file_size(), file.is_memory_mapped() ? "memory-mapped" : "buffer");
  std::printf("format: %u.%u  producer: %s\n", file.version_major(), file.version_minor(), file.producer().c_str());
  std::printf("architecture: %s  user vectors: %zu x %zu  item vector: %zu\n",
              reclite::format::architecture_name(model.architecture()), model.user_vector_count(), model.user_dim(), model.item_dim());
  std::printf("user fields:\n");
  for (const auto* field : model.user_fields()) {
    std::printf("  %-20s %-11s", field->name.c_str(), reclite::format::field_kind_name(field->kind));
    if (field->kind == reclite::format::FieldKind::dense)
      std::printf(" width %u\n", field->width);
    else
      std::printf(" %s ids, vocabulary %lld, table '%s'%s%s\n", field->ids == reclite::format::IdSpace::item ? "item" : "vocabulary",
                  static_cast<long long>(field->vocabulary_size), field->embedding.c_str(),
                  field->kind == reclite::format::FieldKind::history ? ", " : "",
                  field->kind == reclite::format::FieldKind::history ? history_text(model, *field).c_str() : "");
  }
  std::printf("catalogue: %zu items, precomputed item vectors: %s\n", model.catalogue().size(),
              model.item_vectors() ? "yes" : "no");
  std::printf("tensors: %zu\n", file.tensors().size());
  for (const auto& tensor : file.tensors())
    std::printf("  %-40s %-4s %-16s %zu bytes\n", tensor.name.c_str(), reclite::format::dtype_name(tensor.dtype),
                shape_text(tensor.shape).c_str(), tensor.byte_size);
  for (const auto& entry : file.metadata()) std::printf("metadata: %s = %s\n", entry.first.c_str(), entry.second.c_str());
  std::printf("self-test samples: %zu\n", file.self_test().size());
  if (arguments.verify) {
    auto result = model.run_self_test();
    if (!result) return report(result.error());
    std::printf("self-test: %s, %zu samples, max abs error %.3g (worst sample %zu)\n", result->passed ? "passed" : "FAILED",
                result->samples, result->max_error, result->worst_sample);
    return result->passed ? 0 : 1;
  }
  return 0;
}

void print_vector(const float* values, std::size_t n) {
  std::printf("[");
  for (std::size_t i = 0; i < n; ++i) std::printf("%s%s", i ? ", " : "", tool::format_float(values[i]).c_str());
  std::printf("]");
}

int encode(const Arguments& arguments) {
  if (arguments.model.empty() || arguments.user.empty()) return usage();
  auto loaded = reclite::Model::load(arguments.model);
  if (!loaded) return report(loaded.error());
  auto request_json = read_json(arguments.user);
  if (!request_json) return report(request_json.error());
  tool::RequestBuffers buffers;
  auto built = tool::build_request(*loaded, *request_json, buffers);
  if (!built) return report(built.error());
  reclite::Session session(*loaded);
  std::vector<float> user(loaded->user_dim() * loaded->user_vector_count());
  auto done = session.encode_user(buffers.fields, user);
  if (!done) return report(done.error());
  const auto& stats = session.last_stats();
  std::printf("{\"user_vector\": ");
  print_vector(user.data(), user.size());
  std::printf(", \"history_ids_used\": %zu, \"history_ids_truncated\": %zu, \"history_ids_unknown\": %zu}\n",
              stats.history_ids_used, stats.history_ids_truncated, stats.history_ids_unknown);
  return 0;
}

// Recall for one user: the exact index over the model's item vectors, or the hnswlib index.
struct Recaller {
  const reclite::Model* model = nullptr;
  reclite::index::ExactIndex exact;
  reclite::index::HnswIndex hnsw;
  bool use_exact = false;

  reclite::Result<void> open(const reclite::Model& loaded, const Arguments& arguments) {
    model = &loaded;
    use_exact = arguments.exact;
    if (use_exact) {
      if (loaded.item_vectors() == nullptr)
        return reclite::fail(reclite::ErrorCode::invalid_argument, loaded.name() + ": no precomputed item vectors for --exact");
      auto created = reclite::index::ExactIndex::create(
          loaded.item_vectors(), loaded.catalogue().size(), loaded.item_dim(),
          reclite::Span<const std::int64_t>(loaded.catalogue().external_ids(), loaded.catalogue().size()));
      RECLITE_TRY(created);
      exact = std::move(*created);
      return {};
    }
    if (arguments.index.empty()) return reclite::fail(reclite::ErrorCode::invalid_argument, "recall needs --index or --exact");
    auto opened = reclite::index::HnswIndex::open(arguments.index);
    RECLITE_TRY(opened);
    hnsw = std::move(*opened);
    if (hnsw.dim() != loaded.user_dim())
      return reclite::fail(reclite::ErrorCode::index_model_mismatch,
                           arguments.index + ": index vectors have " + std::to_string(hnsw.dim()) + " values, model user vectors " +
                               std::to_string(loaded.user_dim()));
    if (arguments.ef != 0) hnsw.set_ef(arguments.ef);
    return {};
  }

  // The top k for the user vectors of the last encode: one query, or for multi-interest models one per active
  // interest, merged (hits[i].interest says which).
  reclite::Result<std::size_t> search(const float* user, std::size_t active, std::size_t k, std::size_t quota,
                                      reclite::Span<const std::int64_t> excluded,
                                      std::vector<reclite::pipeline::InterestHit>& hits) {
    hits.resize(std::max<std::size_t>(k, 1));
    reclite::pipeline::MultiInterestOptions options;
    options.k = k;
    options.quota = quota;
    const std::size_t dim = model->user_dim();
    const reclite::Span<reclite::pipeline::InterestHit> out(hits.data(), hits.size());
    if (use_exact)
      return reclite::pipeline::multi_interest_recall(exact, user, active, dim, excluded, options, scratch, out);
    return reclite::pipeline::multi_interest_recall(hnsw, user, active, dim, excluded, options, scratch, out);
  }

  reclite::pipeline::MultiInterestScratch scratch;
};

// Vectors a search uses after encode_user: K' for multi-interest models, else 1.
std::size_t active_vectors(const reclite::Model& model, const reclite::Session& session) {
  return model.user_vector_count() > 1 ? session.last_stats().active_interests : 1;
}

int recall(const Arguments& arguments) {
  if (arguments.model.empty() || arguments.user.empty()) return usage();
  auto loaded = reclite::Model::load(arguments.model);
  if (!loaded) return report(loaded.error());
  Recaller recaller;
  auto opened = recaller.open(*loaded, arguments);
  if (!opened) return report(opened.error());
  auto request_json = read_json(arguments.user);
  if (!request_json) return report(request_json.error());
  tool::RequestBuffers buffers;
  auto built = tool::build_request(*loaded, *request_json, buffers);
  if (!built) return report(built.error());
  reclite::Session session(*loaded);
  std::vector<float> user(loaded->user_dim() * loaded->user_vector_count());
  const auto start = std::chrono::steady_clock::now();
  auto done = session.encode_user(buffers.fields, user);
  if (!done) return report(done.error());
  std::vector<std::int64_t> seen = arguments.keep_seen ? std::vector<std::int64_t>() : tool::seen_items(*loaded, buffers);
  std::vector<reclite::pipeline::InterestHit> hits;
  const std::size_t active = active_vectors(*loaded, session);
  auto found = recaller.search(user.data(), active, arguments.k, arguments.quota, seen, hits);
  if (!found) return report(found.error());
  const double micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  const bool multi = loaded->user_vector_count() > 1;
  std::printf("{\"items\": [");
  for (std::size_t i = 0; i < *found; ++i) {
    std::printf("%s{\"item_id\": %lld, \"score\": %s", i ? ", " : "", static_cast<long long>(hits[i].item_id),
                tool::format_float(hits[i].score).c_str());
    if (multi) std::printf(", \"interest\": %u", hits[i].interest);
    std::printf("}");
  }
  std::printf("], \"search\": \"%s\", \"interests\": %zu, \"excluded_seen\": %zu, \"microseconds\": %.1f}\n",
              recaller.use_exact ? "exact" : "hnsw", active, seen.size(), micros);
  return 0;
}

int evaluate(const Arguments& arguments) {
  if (arguments.model.empty() || arguments.users.empty() || arguments.k == 0) return usage();
  auto loaded = reclite::Model::load(arguments.model);
  if (!loaded) return report(loaded.error());
  Recaller recaller;
  auto opened = recaller.open(*loaded, arguments);
  if (!opened) return report(opened.error());
  auto users = read_json(arguments.users);
  if (!users) return report(users.error());
  if (!users->is_array()) return report(reclite::fail(reclite::ErrorCode::invalid_argument, arguments.users + ": expected a JSON array"));
  reclite::Session session(*loaded);
  std::vector<float> user(loaded->user_dim() * loaded->user_vector_count());
  std::vector<reclite::pipeline::InterestHit> hits;
  double hit_rate = 0, ndcg = 0, recall_at_k = 0, total_micros = 0;
  std::size_t evaluated = 0;
  for (const tool::Json& entry : users->items) {
    tool::RequestBuffers buffers;
    auto built = tool::build_request(*loaded, entry, buffers);
    if (!built) return report(built.error());
    const tool::Json* held_out = entry.find("held_out");
    if (held_out == nullptr || !held_out->is_array() || held_out->items.empty()) continue;
    std::vector<std::int64_t> positives;
    for (const auto& item : held_out->items) {
      std::int64_t id = 0;
      if (tool::to_id(item, id)) positives.push_back(id);
    }
    const auto start = std::chrono::steady_clock::now();
    auto done = session.encode_user(buffers.fields, user);
    if (!done) return report(done.error());
    std::vector<std::int64_t> seen = tool::seen_items(*loaded, buffers);
    auto found = recaller.search(user.data(), active_vectors(*loaded, session), arguments.k, arguments.quota, seen, hits);
    if (!found) return report(found.error());
    total_micros += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    double dcg = 0, ideal = 0;
    std::size_t hits_found = 0;
    for (std::size_t rank = 0; rank < *found; ++rank) {
      if (std::find(positives.begin(), positives.end(), hits[rank].item_id) != positives.end()) {
        ++hits_found;
        dcg += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
      }
    }
    for (std::size_t rank = 0; rank < std::min(arguments.k, positives.size()); ++rank) ideal += 1.0 / std::log2(rank + 2.0);
    hit_rate += hits_found > 0 ? 1.0 : 0.0;
    ndcg += dcg / ideal;
    recall_at_k += static_cast<double>(hits_found) / static_cast<double>(positives.size());
    ++evaluated;
  }
  if (evaluated == 0) return report(reclite::fail(reclite::ErrorCode::invalid_argument, arguments.users + ": no user with held_out items"));
  const double n = static_cast<double>(evaluated);
  std::printf("{\"users\": %zu, \"k\": %zu, \"search\": \"%s\", \"hit_rate\": %.6f, \"ndcg\": %.6f, \"recall\": %.6f, "
              "\"mean_microseconds\": %.1f}\n",
              evaluated, arguments.k, recaller.use_exact ? "exact" : "hnsw", hit_rate / n, ndcg / n, recall_at_k / n,
              total_micros / n);
  return 0;
}

// Comma-separated ids ("" is none); false on anything that is not an integer.
bool parse_ids(const std::string& text, std::vector<std::int64_t>& ids) {
  ids.clear();
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string token = text.substr(at, comma - at);
    char* end = nullptr;
    const long long value = std::strtoll(token.c_str(), &end, 10);
    if (token.empty() || end == nullptr || *end != '\0') return false;
    ids.push_back(value);
    at = comma + 1;
  }
  return true;
}

int sequence(const Arguments& arguments) {
  // A state comes from the history or from a saved state, not both.
  if (arguments.model.empty() || (!arguments.history.empty() && !arguments.restore.empty())) return usage();
  std::vector<std::int64_t> history, appended;
  if (!parse_ids(arguments.history, history) || !parse_ids(arguments.append, appended)) return usage();
  auto loaded = reclite::Model::load(arguments.model);
  if (!loaded) return report(loaded.error());
  auto created = reclite::SequenceSession::create(*loaded);
  if (!created) return report(created.error());
  reclite::SequenceSession& sequences = *created;
  std::vector<std::uint8_t> saved;
  if (!arguments.restore.empty()) {
    std::ifstream in(arguments.restore, std::ios::binary);
    if (!in) return report(reclite::Error{reclite::ErrorCode::file_not_found, arguments.restore + ": cannot read"});
    saved.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto state = arguments.restore.empty() ? sequences.start(history)
                                         : sequences.restore(reclite::Span<const std::uint8_t>(saved.data(), saved.size()));
  if (!state)
    return report(arguments.restore.empty() ? state.error()
                                            : reclite::Error{state.error().code, arguments.restore + ": " + state.error().message});
  std::printf("{\"length\": %zu, \"appends\": [", state->length());
  for (std::size_t i = 0; i < appended.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto updated = sequences.append(*state, appended[i]);
    const double micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (!updated) return report(updated.error());
    std::printf("%s{\"item_id\": %lld, \"path\": \"%s\", \"length\": %zu, \"microseconds\": %.1f}", i ? ", " : "",
                static_cast<long long>(appended[i]), reclite::update_path_name(updated->path), updated->length, micros);
  }
  std::printf("], \"user_vector\": ");
  const auto user = state->user_vector();
  print_vector(user.data(), user.size());
  std::printf("}\n");
  if (!arguments.save.empty()) {
    const std::vector<std::uint8_t> bytes = state->serialize();
    std::ofstream out(arguments.save, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) return report(reclite::fail(reclite::ErrorCode::invalid_argument, arguments.save + ": cannot write"));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  if (!parse_arguments(argc, argv, arguments)) return usage();
  if (arguments.command == "inspect") return inspect(arguments);
  if (arguments.command == "encode") return encode(arguments);
  if (arguments.command == "recall") return recall(arguments);
  if (arguments.command == "evaluate") return evaluate(arguments);
  if (arguments.command == "sequence") return sequence(arguments);
  return usage();
}
