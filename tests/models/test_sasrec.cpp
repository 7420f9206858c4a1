// SASRec on small models built in C++ (tests/format/tiny_sasrec.hpp), against a double-precision scalar
// reference written from the converter's PyTorch module (tests/models/sasrec_reference.hpp): every variant, history
// lengths around the window, empty and unknown histories, incremental appends against full re-encodes, state
// serialisation and its refusals, scoring and top-K.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "format/tiny_model.hpp"
#include "format/tiny_sasrec.hpp"
#include "models/sasrec_reference.hpp"
#include "reclite/index/exact_search.hpp"
#include "reclite/reclite.hpp"
#include "support/check.hpp"

namespace {

struct Loaded {
  test::TinySasRec source;
  std::unique_ptr<test::AlignedBuffer> buffer;
  std::unique_ptr<reclite::Model> model;
};

Loaded load_sasrec(const test::TinySasRecOptions& options) {
  Loaded loaded;
  loaded.source = test::build_tiny_sasrec(options);
  loaded.buffer = std::make_unique<test::AlignedBuffer>(loaded.source.bytes);
  auto model = reclite::Model::from_buffer(loaded.buffer->data(), loaded.buffer->size, "tiny_sasrec.reclite");
  REQUIRE_MESSAGE(model, (model ? "" : model.error().describe()));
  loaded.model = std::make_unique<reclite::Model>(std::move(*model));
  return loaded;
}

test::TinySasRecOptions options_for(const std::string& variant) {
  test::TinySasRecOptions options;
  options.spec = test::sasrec_spec(variant);
  return options;
}

// Item rows 1..items, deterministic per seed.
std::vector<std::size_t> random_rows(std::size_t count, std::size_t items, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<std::size_t> row(1, items);
  std::vector<std::size_t> rows(count);
  for (auto& r : rows) r = row(generator);
  return rows;
}

std::vector<std::int64_t> ids_of(const std::vector<std::size_t>& rows) {
  std::vector<std::int64_t> ids;
  for (std::size_t r : rows) ids.push_back(test::TinySasRec::external_id(r));
  return ids;
}

reclite::Result<void> encode(reclite::Session& session, const std::vector<std::int64_t>& ids, std::vector<float>& out) {
  reclite::FieldInput field;
  field.ids = reclite::Span<const std::int64_t>(ids.data(), ids.size());
  return session.encode_user(reclite::Span<const reclite::FieldInput>(&field, 1),
                             reclite::Span<float>(out.data(), out.size() - 1));
}

void check_against_reference(const Loaded& loaded, const std::vector<std::size_t>& rows) {
  reclite::Session session(*loaded.model);
  std::vector<float> got = test::nan_filled(loaded.model->user_dim());
  auto done = encode(session, ids_of(rows), got);
  REQUIRE_MESSAGE(done, (done ? "" : done.error().describe()));
  const std::vector<double> want = test::reference_user_vector(loaded.source, rows);
  REQUIRE(want.size() == loaded.model->user_dim());
  CHECK(test::max_abs_error(got, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
  CHECK(std::isnan(got[want.size()]));
}

}  // namespace

TEST_CASE("models/sasrec: every variant equals the scalar reference around the window length") {
  for (const std::string& variant : test::sasrec_variants()) {
    CAPTURE(variant);
    Loaded loaded = load_sasrec(options_for(variant));
    const std::size_t window = loaded.source.options.max_length;
    for (std::size_t length : {std::size_t{1}, std::size_t{2}, window - 1, window, window + 7}) {
      CAPTURE(length);
      check_against_reference(loaded, random_rows(length, loaded.source.options.items, static_cast<unsigned>(length)));
    }
    CHECK(loaded.model->architecture() == reclite::Architecture::sasrec);
    CHECK(loaded.model->user_dim() == loaded.source.options.hidden);
  }
}

TEST_CASE("models/sasrec: layer and head counts and block options follow the reference") {
  struct Shape { std::uint32_t layers, heads, hidden, inner, max_length; bool output_projection; };
  const Shape shapes[] = {{1, 1, 8, 8, 5, true}, {3, 4, 32, 64, 12, true}, {0, 2, 16, 24, 6, true}, {2, 2, 16, 16, 7, false}};
  for (const std::string& variant : test::sasrec_variants()) {
    for (const Shape& shape : shapes) {
      CAPTURE(variant);
      CAPTURE(shape.layers);
      CAPTURE(shape.heads);
      test::TinySasRecOptions options = options_for(variant);
      options.layers = shape.layers;
      options.heads = shape.heads;
      options.hidden = shape.hidden;
      options.inner = shape.inner;
      options.max_length = shape.max_length;
      options.output_projection = shape.output_projection;
      Loaded loaded = load_sasrec(options);
      for (std::size_t length : {std::size_t{1}, std::size_t{shape.max_length} - 1, std::size_t{shape.max_length} + 3})
        check_against_reference(loaded, random_rows(length, options.items, 99 + static_cast<unsigned>(length)));
    }
  }
}

TEST_CASE("models/sasrec: masking options beyond the public variants follow the schema") {
  // Left padding with masked pad keys, additive and removing; right padding with -inf.
  for (float mask_value : {-10000.0f, -std::numeric_limits<float>::infinity()}) {
    for (auto side : {reclite::fbs::PaddingSide::left, reclite::fbs::PaddingSide::right}) {
      CAPTURE(mask_value);
      test::TinySasRecOptions options = options_for("recbole");
      options.spec.padding_side = side;
      options.spec.mask_value = mask_value;
      options.spec.variant = "custom";
      Loaded loaded = load_sasrec(options);
      for (std::size_t length : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
        CAPTURE(length);
        const auto rows = random_rows(length, options.items, 5 + static_cast<unsigned>(length));
        if (side == reclite::fbs::PaddingSide::left && std::isinf(mask_value) && length < options.max_length) {
          // torch: a pad query with every key removed is NaN, and the NaN reaches every row through 0 * NaN in
          // the next block. The engine gives such rows zero context instead, so valid rows stay finite.
          reclite::Session session(*loaded.model);
          std::vector<float> got = test::nan_filled(options.hidden);
          REQUIRE(encode(session, ids_of(rows), got));
          CHECK(std::all_of(got.begin(), got.end() - 1, [](float v) { return std::isfinite(v); }));
          continue;
        }
        check_against_reference(loaded, rows);
      }
    }
  }
}

TEST_CASE("models/sasrec: an empty history is the all-padding window for left padding and empty_history for right") {
  for (const std::string& variant : test::sasrec_variants()) {
    CAPTURE(variant);
    Loaded loaded = load_sasrec(options_for(variant));
    reclite::Session session(*loaded.model);
    std::vector<float> got = test::nan_filled(loaded.model->user_dim());
    for (const std::vector<std::int64_t>& history : {std::vector<std::int64_t>{}, std::vector<std::int64_t>{5, 77777}}) {
      auto done = encode(session, history, got);
      if (variant == "recbole") {
        REQUIRE_FALSE(done);
        CHECK(done.error().code == reclite::ErrorCode::empty_history);
        CHECK(done.error().message.find("history") != std::string::npos);
        CHECK(done.error().message.find("tiny_sasrec.reclite") != std::string::npos);
      } else {
        REQUIRE(done);
        const std::vector<double> want = test::reference_user_vector(loaded.source, {});
        CHECK(test::max_abs_error(got, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
      }
    }
  }
}

TEST_CASE("models/sasrec: unknown ids are skipped and counted and the most recent known items kept") {
  for (const std::string& variant : {std::string("recbole"), std::string("pmixer_v2")}) {
    CAPTURE(variant);
    Loaded loaded = load_sasrec(options_for(variant));
    const std::size_t window = loaded.source.options.max_length;
    const std::vector<std::size_t> rows = random_rows(window + 7, loaded.source.options.items, 3);
    std::vector<std::int64_t> with_unknown;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      with_unknown.push_back(test::TinySasRec::external_id(rows[i]));
      if (i % 4 == 1) with_unknown.push_back(-5 - static_cast<std::int64_t>(i));  // not in the catalogue
    }
    with_unknown.push_back(1000);  // the padding row's id is not a catalogue item either
    reclite::Session session(*loaded.model);
    std::vector<float> got = test::nan_filled(loaded.model->user_dim());
    REQUIRE(encode(session, with_unknown, got));
    const std::vector<double> want = test::reference_user_vector(loaded.source, rows);
    CHECK(test::max_abs_error(got, want, want.size()) <= test::tolerance::pytorch_parity.absolute);
    // The definition: scan back from the most recent id until window known items are found.
    const reclite::EncodeStats& stats = session.last_stats();
    std::size_t used = 0, unknown = 0, i = with_unknown.size();
    while (i > 0 && used < window) {
      const std::int64_t id = with_unknown[--i];
      if (id > 1000 && id <= 1000 + static_cast<std::int64_t>(loaded.source.options.items))
        ++used;
      else
        ++unknown;
    }
    CHECK(stats.history_ids_used == used);
    CHECK(used == window);
    CHECK(stats.history_ids_unknown == unknown);
    CHECK(stats.history_ids_truncated == i);
    CHECK(unknown >= 2);
  }
}

TEST_CASE("models/sasrec: appends equal full re-encodes over 200 events across the window boundary") {
  struct Case { std::string variant; std::size_t start; reclite::UpdatePath before_full; };
  const Case cases[] = {{"recbole", 0, reclite::UpdatePath::incremental},
                        {"recbole", 3, reclite::UpdatePath::incremental},
                        {"pmixer_v1", 0, reclite::UpdatePath::reencode_padding},
                        {"pmixer_v3_pre_norm", 2, reclite::UpdatePath::reencode_padding}};
  for (const Case& c : cases) {
    CAPTURE(c.variant);
    CAPTURE(c.start);
    test::TinySasRecOptions options = options_for(c.variant);
    options.max_length = 20;
    options.hidden = 32;
    options.heads = 4;
    options.inner = 48;
    Loaded loaded = load_sasrec(options);
    auto sequences = reclite::SequenceSession::create(*loaded.model);
    REQUIRE(sequences);
    reclite::Session session(*loaded.model);
    std::vector<std::size_t> rows = random_rows(c.start + 200, options.items, 11);
    std::vector<std::int64_t> history = ids_of(std::vector<std::size_t>(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(c.start)));
    auto state = sequences->start(history);
    REQUIRE(state);
    CHECK(state->has_user_vector() == (c.start > 0 || c.variant != "recbole"));
    std::vector<float> full = test::nan_filled(options.hidden);
    double worst = 0;
    std::size_t incremental = 0;
    for (std::size_t step = 0; step < 200; ++step) {
      CAPTURE(step);
      const std::int64_t id = test::TinySasRec::external_id(rows[c.start + step]);
      const std::size_t before = state->length();
      auto report = sequences->append(*state, id);
      REQUIRE(report);
      history.push_back(id);
      const reclite::UpdatePath expected =
          before == options.max_length ? reclite::UpdatePath::reencode_window_full : c.before_full;
      CHECK(report->path == expected);
      incremental += report->path == reclite::UpdatePath::incremental ? 1 : 0;
      CHECK(report->length == std::min<std::size_t>(history.size(), options.max_length));
      REQUIRE(state->has_user_vector());
      REQUIRE(encode(session, history, full));
      worst = std::max(worst, test::max_abs_error(state->user_vector().data(), full, options.hidden));
      if (step % 37 == 0) {
        std::vector<std::size_t> so_far(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(c.start + step + 1));
        const std::vector<double> want = test::reference_user_vector(loaded.source, so_far);
        CHECK(test::max_abs_error(state->user_vector().data(), want, want.size()) <= 1e-5);
      }
      const auto window_ids = state->item_ids();
      REQUIRE(window_ids.size() == report->length);
      CHECK(window_ids[window_ids.size() - 1] == id);
    }
    CHECK(worst <= 1e-5);
    // Stronger than the 1e-5: the incremental step sums in the encode's order, so the bits are equal.
    CHECK(worst == 0.0);
    if (c.variant == "recbole") CHECK(incremental == options.max_length - c.start);
  }
}

TEST_CASE("models/sasrec: an unknown appended id leaves the state unchanged") {
  Loaded loaded = load_sasrec(options_for("recbole"));
  auto sequences = reclite::SequenceSession::create(*loaded.model);
  REQUIRE(sequences);
  auto state = sequences->start(ids_of({3, 4}));
  REQUIRE(state);
  const std::vector<float> before(state->user_vector().begin(), state->user_vector().end());
  auto report = sequences->append(*state, 424242);
  REQUIRE(report);
  CHECK(report->path == reclite::UpdatePath::skipped_unknown_item);
  CHECK(sequences->last_stats().history_ids_unknown == 1);
  CHECK(state->length() == 2);
  CHECK(test::max_abs_error(state->user_vector().data(), before, before.size()) == 0.0);
  CHECK(std::string(reclite::update_path_name(report->path)) == "skipped_unknown_item");
}

TEST_CASE("models/sasrec: a serialised state restores to the same window and vector") {
  for (const std::string& variant : {std::string("recbole"), std::string("pmixer_v2")}) {
    CAPTURE(variant);
    Loaded loaded = load_sasrec(options_for(variant));
    auto sequences = reclite::SequenceSession::create(*loaded.model);
    REQUIRE(sequences);
    for (std::size_t length : {std::size_t{0}, std::size_t{3}, std::size_t{8}, std::size_t{15}}) {
      CAPTURE(length);
      auto state = sequences->start(ids_of(random_rows(length, 40, 21)));
      REQUIRE(state);
      const std::vector<std::uint8_t> bytes = state->serialize();
      CHECK(bytes.size() == state->serialized_size());
      auto restored = sequences->restore(bytes);
      REQUIRE_MESSAGE(restored, (restored ? "" : restored.error().describe()));
      CHECK(restored->length() == state->length());
      CHECK(std::equal(restored->item_ids().begin(), restored->item_ids().end(), state->item_ids().begin()));
      CHECK(restored->has_user_vector() == state->has_user_vector());
      if (state->has_user_vector())
        CHECK(test::max_abs_error(restored->user_vector().data(), state->user_vector().data(), 16) == 0.0);
      // Both continue identically.
      auto a = sequences->append(*state, 1007);
      auto b = sequences->append(*restored, 1007);
      REQUIRE(a);
      REQUIRE(b);
      CHECK(a->path == b->path);
      CHECK(test::max_abs_error(restored->user_vector().data(), state->user_vector().data(), 16) <= 1e-6);
    }
  }
}

TEST_CASE("models/sasrec: states from another model or format version or damaged bytes are refused") {
  Loaded loaded = load_sasrec(options_for("recbole"));
  test::TinySasRecOptions other_options = options_for("recbole");
  other_options.seed = 8;  // same shapes, other weights
  Loaded other = load_sasrec(other_options);
  auto sequences = reclite::SequenceSession::create(*loaded.model);
  auto other_sequences = reclite::SequenceSession::create(*other.model);
  REQUIRE(sequences);
  REQUIRE(other_sequences);
  auto state = sequences->start(ids_of({1, 2, 3, 4, 5}));
  REQUIRE(state);
  const std::vector<std::uint8_t> good = state->serialize();
  auto refused = [&](const std::vector<std::uint8_t>& bytes, reclite::ErrorCode code, const std::string& needle) {
    auto restored = sequences->restore(bytes);
    REQUIRE_FALSE(restored);
    CAPTURE(restored.error().describe());
    CHECK(restored.error().code == code);
    CHECK(restored.error().message.find(needle) != std::string::npos);
  };
  auto recrc = [](std::vector<std::uint8_t> bytes) {
    const std::uint32_t crc = reclite::crc32(bytes.data(), bytes.size() - 4);
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    return bytes;
  };

  SUBCASE("another model") {
    auto foreign = other_sequences->start(ids_of({1, 2, 3}));
    REQUIRE(foreign);
    refused(foreign->serialize(), reclite::ErrorCode::state_model_mismatch, "another model");
    auto appended = sequences->append(*foreign, 1001);
    REQUIRE_FALSE(appended);
    CHECK(appended.error().code == reclite::ErrorCode::state_model_mismatch);
    reclite::SequenceState empty;
    CHECK(sequences->append(empty, 1001).error().code == reclite::ErrorCode::state_model_mismatch);
  }
  SUBCASE("wrong version") {
    std::vector<std::uint8_t> bytes = good;
    bytes[4] = 2;
    refused(recrc(bytes), reclite::ErrorCode::unsupported_state_version, "version 2");
  }
  SUBCASE("truncated at every length") {
    for (std::size_t size = 0; size < good.size(); ++size) {
      CAPTURE(size);
      auto restored = sequences->restore(reclite::Span<const std::uint8_t>(good.data(), size));
      REQUIRE_FALSE(restored);
      CHECK(restored.error().code == reclite::ErrorCode::corrupt_state);
    }
    std::vector<std::uint8_t> longer = good;
    longer.push_back(0);
    refused(longer, reclite::ErrorCode::corrupt_state, "trailing");
  }
  SUBCASE("every flipped bit") {
    for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
      std::vector<std::uint8_t> bytes = good;
      bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      auto restored = sequences->restore(bytes);
      CAPTURE(bit);
      REQUIRE_FALSE(restored);
      const auto code = restored.error().code;
      CHECK((code == reclite::ErrorCode::corrupt_state || code == reclite::ErrorCode::unsupported_state_version));
    }
  }
  SUBCASE("an item id not in the catalogue with a valid checksum") {
    std::vector<std::uint8_t> bytes = good;
    bytes[reclite::SequenceState::header_size + 8] = 0x7f;
    refused(recrc(bytes), reclite::ErrorCode::corrupt_state, "not in the catalogue");
  }
  SUBCASE("more items than the window with consistent sizes") {
    auto full = sequences->start(ids_of(random_rows(8, 40, 2)));
    REQUIRE(full);
    std::vector<std::uint8_t> bytes = full->serialize();
    bytes[16] = 7;  // claims a window of 7 for 8 items
    refused(recrc(bytes), reclite::ErrorCode::corrupt_state, "exceed the window");
  }
  SUBCASE("a window of another size") {
    std::vector<std::uint8_t> bytes = good;
    bytes[16] = 9;
    refused(recrc(bytes), reclite::ErrorCode::state_model_mismatch, "window 9");
  }
  SUBCASE("not a state") {
    std::vector<std::uint8_t> bytes = good;
    bytes[0] = 'X';
    refused(bytes, reclite::ErrorCode::corrupt_state, "magic");
  }
}

TEST_CASE("models/sasrec: scores and exact top-K use the item table without the padding row") {
  Loaded loaded = load_sasrec(options_for("pmixer_v3"));
  const reclite::Model& model = *loaded.model;
  const std::size_t d = model.item_dim();
  REQUIRE(model.catalogue().size() == loaded.source.options.items);
  REQUIRE(model.item_vectors() != nullptr);
  const auto& table = loaded.source.tensor("item_embedding.weight");
  CHECK(test::max_abs_error(model.item_vectors(), table.data() + d, d * model.catalogue().size()) == 0.0);

  auto sequences = reclite::SequenceSession::create(model);
  REQUIRE(sequences);
  const std::vector<std::int64_t> history = ids_of({4, 9, 9, 17});
  auto state = sequences->start(history);
  REQUIRE(state);
  reclite::Session session(model);
  std::vector<std::int64_t> candidates{1001, 1040, 1017, 1002};
  std::vector<float> scores(candidates.size());
  REQUIRE(session.score_items(state->user_vector(), candidates, scores));
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const float* row = table.data() + static_cast<std::size_t>(candidates[i] - 1000) * d;
    CHECK(std::fabs(scores[i] - reclite::ops::reference::dot(state->user_vector().data(), row, d)) <= 1e-5);
  }
  auto padding = std::vector<std::int64_t>{1000};
  CHECK(session.score_items(state->user_vector(), padding, scores).error().code ==
        reclite::ErrorCode::feature_out_of_vocabulary);

  auto exact = reclite::index::ExactIndex::create(
      model.item_vectors(), model.catalogue().size(), d,
      reclite::Span<const std::int64_t>(model.catalogue().external_ids(), model.catalogue().size()));
  REQUIRE(exact);
  std::vector<reclite::index::SearchHit> hits(100);
  auto found = exact->search_top_k(state->user_vector().data(), 100, state->item_ids(), hits);
  REQUIRE(found);
  CHECK(*found == model.catalogue().size() - 3);  // three distinct history items excluded
  // Oracle: every non-padding row scored in double, history excluded.
  std::vector<std::pair<double, std::int64_t>> all;
  for (std::size_t row = 1; row <= loaded.source.options.items; ++row) {
    const std::int64_t id = test::TinySasRec::external_id(row);
    if (std::find(history.begin(), history.end(), id) != history.end()) continue;
    double score = 0;
    for (std::size_t c = 0; c < d; ++c) score += static_cast<double>(state->user_vector()[c]) * table[row * d + c];
    all.emplace_back(-score, id);
  }
  std::sort(all.begin(), all.end());
  for (std::size_t r = 0; r < *found; ++r) {
    CAPTURE(r);
    CHECK(hits[r].item_id == all[r].second);
  }
}

TEST_CASE("models/sasrec: a session for another architecture is wrong_architecture") {
  test::AlignedBuffer buffer(test::build_tiny_model());
  auto model = reclite::Model::from_buffer(buffer.data(), buffer.size, "tiny.reclite");
  REQUIRE(model);
  auto sequences = reclite::SequenceSession::create(*model);
  REQUIRE_FALSE(sequences);
  CHECK(sequences.error().code == reclite::ErrorCode::wrong_architecture);
  CHECK(sequences.error().message.find("youtube_dnn") != std::string::npos);
}

TEST_CASE("models/sasrec: a request with another field count is invalid_argument") {
  Loaded loaded = load_sasrec(options_for("pmixer_v1"));
  reclite::Session session(*loaded.model);
  std::vector<float> out(loaded.model->user_dim());
  reclite::FieldInput fields[2];
  auto done = session.encode_user(reclite::Span<const reclite::FieldInput>(fields, 2), out);
  REQUIRE_FALSE(done);
  CHECK(done.error().code == reclite::ErrorCode::invalid_argument);
  CHECK(loaded.model->user_fields().size() == 1);
  CHECK(loaded.model->user_fields()[0]->name == "history");
}
