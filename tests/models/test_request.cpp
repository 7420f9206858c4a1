// Request semantics and bad input on the tiny YouTubeDNN model (tests/format/tiny_model.hpp), checked against a
// plain scalar computation written out here: categorical lookup, mean pooling of the most recent max_length known
// items, dense values, Linear + ReLU, L2 normalisation.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "format/tiny_model.hpp"
#include "reclite/reclite.hpp"
#include "support/check.hpp"

namespace {

struct TinyFixture {
  test::AlignedBuffer buffer{test::build_tiny_model()};
  reclite::Model model = load();
  reclite::Model load() {
    auto loaded = reclite::Model::from_buffer(buffer.data(), buffer.size, "tiny.reclite");
    REQUIRE(loaded);
    return std::move(*loaded);
  }
};

const test::TinyTensor& tiny(const std::string& name) {
  static const auto tensors = test::tiny_tensors();
  for (const auto& tensor : tensors)
    if (tensor.name == name) return tensor;
  FAIL("no tensor " << name);
  return tensors.front();
}

// The expected user vector, computed the slow obvious way. `rows` are item-table rows already resolved.
std::vector<float> expected_user(std::int64_t age, const std::vector<std::size_t>& rows, const std::vector<float>& dense) {
  std::vector<double> input;
  for (int d = 0; d < 4; ++d) input.push_back(tiny("embedding.age").values[static_cast<std::size_t>(age) * 4 + d]);
  for (int d = 0; d < 4; ++d) {
    double sum = 0;
    for (std::size_t row : rows) sum += tiny("embedding.item").values[row * 4 + d];
    input.push_back(rows.empty() ? 0.0 : sum / static_cast<double>(rows.size()));
  }
  for (float value : dense) input.push_back(value);
  std::vector<double> hidden(4);
  double norm = 0;
  for (int o = 0; o < 4; ++o) {
    double sum = tiny("user.0.bias").values[o];
    for (int i = 0; i < 10; ++i) sum += tiny("user.0.weight").values[o * 10 + i] * input[i];
    hidden[o] = sum > 0 ? sum : 0;
    norm += hidden[o] * hidden[o];
  }
  norm = std::max(std::sqrt(norm), 1e-12);
  std::vector<float> out;
  for (double value : hidden) out.push_back(static_cast<float>(value / norm));
  return out;
}

reclite::Result<void> encode(reclite::Session& session, std::vector<std::int64_t> age, std::vector<std::int64_t> history,
                             std::vector<float> dense, std::vector<float>& out) {
  std::vector<reclite::FieldInput> request(3);
  request[0].ids = reclite::Span<const std::int64_t>(age.data(), age.size());
  request[1].ids = reclite::Span<const std::int64_t>(history.data(), history.size());
  request[2].values = reclite::Span<const float>(dense.data(), dense.size());
  return session.encode_user(request, out);
}

}  // namespace

TEST_CASE("models/request: user vector matches a scalar computation of the declared semantics") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got = test::nan_filled(4);
  // External ids 100..104 are rows 1..5.
  REQUIRE(encode(session, {2}, {101, 103}, {0.5f, -1.0f}, got));
  test::check_close(got, expected_user(2, {2, 4}, {0.5f, -1.0f}), 4, test::tolerance::simd_vs_reference);
  CHECK(std::isnan(got[4]));
}

TEST_CASE("models/request: a history longer than max_length keeps the most recent") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got(4);
  REQUIRE(encode(session, {0}, {100, 101, 102, 103, 104}, {0, 0}, got));
  test::check_close(got, expected_user(0, {3, 4, 5}, {0, 0}), 4, test::tolerance::simd_vs_reference);
  CHECK(session.last_stats().history_ids_truncated == 2);
  CHECK(session.last_stats().history_ids_used == 3);
}

TEST_CASE("models/request: unknown history ids are skipped and counted and an empty history pools to zeros") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got(4);
  REQUIRE(encode(session, {1}, {999, 102}, {1, 1}, got));
  test::check_close(got, expected_user(1, {3}, {1, 1}), 4, test::tolerance::simd_vs_reference);
  CHECK(session.last_stats().history_ids_unknown == 1);
  REQUIRE(encode(session, {1}, {}, {1, 1}, got));
  test::check_close(got, expected_user(1, {}, {1, 1}), 4, test::tolerance::simd_vs_reference);
  REQUIRE(encode(session, {1}, {999, 998}, {1, 1}, got));  // only unknown ids: same as empty
  test::check_close(got, expected_user(1, {}, {1, 1}), 4, test::tolerance::simd_vs_reference);
}

TEST_CASE("models/request: out of vocabulary categorical values are errors naming the field") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got(4);
  for (std::int64_t bad : {std::int64_t{5}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()}) {
    auto result = encode(session, {bad}, {101}, {0, 0}, got);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == reclite::ErrorCode::feature_out_of_vocabulary);
    CHECK(result.error().message.find("'age'") != std::string::npos);
  }
  auto none = encode(session, {}, {101}, {0, 0}, got);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == reclite::ErrorCode::invalid_argument);
  auto two = encode(session, {1, 2}, {101}, {0, 0}, got);
  REQUIRE_FALSE(two);
  CHECK(two.error().code == reclite::ErrorCode::invalid_argument);
}

TEST_CASE("models/request: NaN or infinite dense values and wrong widths are rejected") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got(4);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto result = encode(session, {1}, {101}, {0.0f, bad}, got);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == reclite::ErrorCode::non_finite_input);
    CHECK(result.error().message.find("'scores'") != std::string::npos);
  }
  auto narrow = encode(session, {1}, {101}, {0.0f}, got);
  REQUIRE_FALSE(narrow);
  CHECK(narrow.error().code == reclite::ErrorCode::invalid_argument);
}

TEST_CASE("models/request: wrong field count and short output buffer are errors") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> got(4);
  std::vector<reclite::FieldInput> too_few(2);
  auto result = session.encode_user(too_few, got);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == reclite::ErrorCode::invalid_argument);
  std::vector<float> short_output(3);
  auto short_result = encode(session, {1}, {101}, {0, 0}, short_output);
  REQUIRE_FALSE(short_result);
  CHECK(short_result.error().code == reclite::ErrorCode::output_size);
  auto field = fixture.model.user_field_index("nope");
  REQUIRE_FALSE(field);
  CHECK(field.error().code == reclite::ErrorCode::unknown_field);
  CHECK(*fixture.model.user_field_index("history") == 1);
}

TEST_CASE("models/request: item vectors and scores by external id") {
  TinyFixture fixture;
  reclite::Session session(fixture.model);
  std::vector<float> item = test::nan_filled(4);
  REQUIRE(session.encode_item(102, reclite::Span<float>(item.data(), 4)));
  for (int d = 0; d < 4; ++d) CHECK(item[d] == tiny("embedding.item").values[3 * 4 + d]);  // row 3, not normalised
  auto unknown = session.encode_item(7, item);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == reclite::ErrorCode::feature_out_of_vocabulary);
  std::vector<float> user(4);
  REQUIRE(encode(session, {1}, {101}, {0, 0}, user));
  std::vector<std::int64_t> candidates{104, 100};
  std::vector<float> scores(2);
  REQUIRE(session.score_items(user, candidates, scores));
  double want = 0;
  for (int d = 0; d < 4; ++d) want += user[d] * tiny("embedding.item").values[5 * 4 + d];
  CHECK(scores[0] == doctest::Approx(want).epsilon(1e-6));
  std::vector<std::int64_t> bad_candidates{104, 55};
  CHECK_FALSE(session.score_items(user, bad_candidates, scores));
}
