// Loader tests: every kind of bad model file gives its documented error, naming file and field; none crashes.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "format/tiny_model.hpp"
#include "reclite/reclite.hpp"

namespace {

reclite::Result<reclite::Model> load_bytes(const std::vector<std::uint8_t>& bytes, const reclite::LoadOptions& options = {}) {
  static std::vector<test::AlignedBuffer> keep;  // buffers must outlive the models built on them
  keep.emplace_back(bytes);
  return reclite::Model::from_buffer(keep.back().data(), bytes.size(), "tiny.reclite", options);
}

void check_error(const reclite::Result<reclite::Model>& result, reclite::ErrorCode code, const std::string& needle) {
  REQUIRE_FALSE(result.has_value());
  CAPTURE(result.error().describe());
  CHECK(result.error().code == code);
  CHECK(result.error().message.find(needle) != std::string::npos);
  CHECK(result.error().message.find("tiny.reclite") != std::string::npos);
}

}  // namespace

TEST_CASE("format/model_file: the tiny model loads and views its tensors in place") {
  auto bytes = test::build_tiny_model();
  auto loaded = load_bytes(bytes);
  REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().describe()));
  CHECK(loaded->architecture() == reclite::Architecture::youtube_dnn);
  CHECK(loaded->user_dim() == 4);
  CHECK(loaded->catalogue().size() == 5);
  CHECK(loaded->file().tensors().size() == 4);
  CHECK(loaded->catalogue().find_entry(103) == 3);
  CHECK(loaded->catalogue().find_entry(99) == reclite::models::Catalogue::not_found);
}

TEST_CASE("format/model_file: missing file and a file of another format") {
  auto missing = reclite::Model::load("does/not/exist.reclite");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == reclite::ErrorCode::file_not_found);
  const std::string path = "not_a_model.txt";
  std::FILE* file = std::fopen(path.c_str(), "wb");
  std::fputs("{\"this\": \"is json, not a model\"}", file);
  std::fclose(file);
  auto other = reclite::Model::load(path);
  REQUIRE_FALSE(other);
  CHECK(other.error().code == reclite::ErrorCode::not_a_model_file);
  CHECK(other.error().message.find("RCLT") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("format/model_file: wrong identifier is not_a_model_file") {
  auto bytes = test::build_tiny_model();
  bytes[4] = 'X';
  check_error(load_bytes(bytes), reclite::ErrorCode::not_a_model_file, "RCLT");
}

TEST_CASE("format/model_file: a newer major version is refused naming both versions") {
  test::TinyModelOptions options;
  options.format_major = 2;
  options.format_minor = 3;
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::unsupported_format_version, "2.3");
  options.format_major = 1;  // a newer minor only adds fields: accepted
  CHECK(load_bytes(test::build_tiny_model(options)).has_value());
}

TEST_CASE("format/model_file: every truncation fails cleanly") {
  auto bytes = test::build_tiny_model();
  // The last bytes may be alignment padding after the first tensor's data: cutting only those is harmless.
  for (std::size_t size = 0; size + 64 < bytes.size(); size += (size < 64 ? 1 : 37)) {
    CAPTURE(size);
    std::vector<std::uint8_t> truncated(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size));
    auto result = load_bytes(truncated);
    REQUIRE_FALSE(result.has_value());
    const auto code = result.error().code;
    CHECK((code == reclite::ErrorCode::not_a_model_file || code == reclite::ErrorCode::corrupt_file));
  }
}

TEST_CASE("format/model_file: flipped bits give an error or a valid model and never crash") {
  auto bytes = test::build_tiny_model();
  std::mt19937 generator(7);
  std::size_t failures = 0;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    auto flipped = bytes;
    flipped[position] ^= static_cast<std::uint8_t>(1u << (generator() % 8));
    auto result = load_bytes(flipped);
    if (!result) ++failures;
  }
  CHECK(failures > bytes.size() / 4);  // most flips are caught (structure or CRC); the rest load consistently
}

TEST_CASE("format/model_file: corrupted tensor data is checksum_mismatch naming the tensor") {
  test::TinyModelOptions options;
  options.corrupt_crc_tensor = "user.0.weight";
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::checksum_mismatch, "user.0.weight");
  reclite::LoadOptions skip;
  skip.verify_checksums = false;
  CHECK(load_bytes(test::build_tiny_model(options), skip).has_value());
}

TEST_CASE("format/model_file: a missing tensor is named with its role") {
  test::TinyModelOptions options;
  options.skip_tensor = "user.0.bias";
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::missing_tensor, "'user.0.bias' (user_tower.layers[0].bias)");
}

TEST_CASE("format/model_file: a wrong shape names tensor expected and actual shapes") {
  test::TinyModelOptions options;
  options.misshape_tensor = "user.0.weight";
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::tensor_shape,
              "expected shape [-1, 10], got [4, 11]");
  options.misshape_tensor = "embedding.age";
  // A wider table widens the tower input, which the first layer then does not accept.
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::tensor_shape,
              "expected shape [-1, 11], got [4, 10]");
}

TEST_CASE("format/model_file: a vocabulary larger than its table is a shape error") {
  test::TinyModelOptions options;
  options.age_vocabulary = 9;
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::tensor_shape, "embedding.age");
}

TEST_CASE("format/model_file: an architecture the caller did not ask for is wrong_architecture") {
  reclite::LoadOptions options;
  options.expected_architecture = reclite::Architecture::dssm;
  check_error(load_bytes(test::build_tiny_model(), options), reclite::ErrorCode::wrong_architecture, "youtube_dnn");
  test::TinyModelOptions mismatched;
  mismatched.architecture = reclite::fbs::Architecture::dssm;  // config is a YoutubeDnnConfig
  check_error(load_bytes(test::build_tiny_model(mismatched)), reclite::ErrorCode::invalid_config, "DssmConfig");
  mismatched.architecture = static_cast<reclite::fbs::Architecture>(77);
  check_error(load_bytes(test::build_tiny_model(mismatched)), reclite::ErrorCode::invalid_config, "not supported");
}

TEST_CASE("format/model_file: catalogue duplicates and rows outside the table are refused") {
  test::TinyModelOptions options;
  options.duplicate_external_id = true;
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::invalid_item_catalogue, "not unique");
  options = test::TinyModelOptions();
  options.catalogue_row_out_of_range = true;
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::invalid_item_catalogue, "row 6");
}

TEST_CASE("format/model_file: a zero max_length is an invalid config") {
  test::TinyModelOptions options;
  options.history_max_length = 0;
  check_error(load_bytes(test::build_tiny_model(options)), reclite::ErrorCode::invalid_config, "max_length");
}
