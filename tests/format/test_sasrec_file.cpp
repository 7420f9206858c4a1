// SASRec load errors: each broken file gives its documented code and a message naming the tensor or field.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "format/tiny_model.hpp"
#include "format/tiny_sasrec.hpp"
#include "reclite/reclite.hpp"

namespace {

reclite::Result<reclite::Model> load_sasrec_bytes(const test::TinySasRecOptions& options) {
  static std::vector<std::unique_ptr<test::AlignedBuffer>> keep;  // buffers outlive the models built on them
  keep.push_back(std::make_unique<test::AlignedBuffer>(test::build_tiny_sasrec(options).bytes));
  return reclite::Model::from_buffer(keep.back()->data(), keep.back()->size, "tiny_sasrec.reclite");
}

void check_error(const test::TinySasRecOptions& options, reclite::ErrorCode code, const std::vector<std::string>& needles) {
  auto result = load_sasrec_bytes(options);
  REQUIRE_FALSE(result.has_value());
  CAPTURE(result.error().describe());
  CHECK(result.error().code == code);
  for (const auto& needle : needles) CHECK(result.error().message.find(needle) != std::string::npos);
  CHECK(result.error().message.find("tiny_sasrec.reclite") != std::string::npos);
}

test::TinySasRecOptions recbole() {
  test::TinySasRecOptions options;
  options.spec = test::sasrec_spec("recbole");
  return options;
}

}  // namespace

TEST_CASE("format/sasrec: every variant's file loads with its config read") {
  for (const std::string& variant : test::sasrec_variants()) {
    CAPTURE(variant);
    test::TinySasRecOptions options;
    options.spec = test::sasrec_spec(variant);
    auto loaded = load_sasrec_bytes(options);
    REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().describe()));
    const reclite::format::SasRecConfig* config = loaded->file().sasrec();
    REQUIRE(config != nullptr);
    CHECK(config->variant == variant);
    CHECK(config->layers.size() == 2);
    CHECK(config->heads == 2);
    CHECK((config->padding_side == reclite::format::PaddingSide::right) == (variant == "recbole"));
    CHECK(config->layers[1].key_weight == "layers.1.key.weight");
    CHECK(loaded->file().dssm() == nullptr);
  }
}

TEST_CASE("format/sasrec: heads that do not divide hidden_size are invalid_config") {
  test::TinySasRecOptions options = recbole();
  options.heads = 3;
  check_error(options, reclite::ErrorCode::invalid_config, {"sasrec.heads = 3", "hidden_size = 16"});
  options.heads = 0;
  check_error(options, reclite::ErrorCode::invalid_config, {"sasrec.heads = 0"});
}

TEST_CASE("format/sasrec: a missing layer tensor is missing_tensor naming tensor and role") {
  test::TinySasRecOptions options = recbole();
  options.skip_tensor = "layers.1.key.weight";
  check_error(options, reclite::ErrorCode::missing_tensor, {"'layers.1.key.weight'", "sasrec.layers[1].key_weight"});
  options.skip_tensor = "embedding_norm.bias";
  check_error(options, reclite::ErrorCode::missing_tensor, {"'embedding_norm.bias'", "sasrec.embedding_norm_bias"});
  options = test::TinySasRecOptions();
  options.spec = test::sasrec_spec("pmixer_v1");
  options.skip_tensor = "final_norm.weight";
  check_error(options, reclite::ErrorCode::missing_tensor, {"'final_norm.weight'"});
}

TEST_CASE("format/sasrec: wrong shapes are tensor_shape naming the tensor and both shapes") {
  test::TinySasRecOptions options = recbole();
  options.misshape_tensor = "layers.0.inner.weight";
  check_error(options, reclite::ErrorCode::tensor_shape, {"'layers.0.inner.weight'", "[24, 16]", "[24, 17]"});
  options.misshape_tensor = "layers.1.outer.bias";
  check_error(options, reclite::ErrorCode::tensor_shape, {"'layers.1.outer.bias'"});
  options.misshape_tensor = "item_embedding.weight";
  check_error(options, reclite::ErrorCode::tensor_shape, {"'item_embedding.weight'"});
  options = test::TinySasRecOptions();
  options.spec = test::sasrec_spec("pmixer_v2");  // needs max_length + 1 position rows
  options.position_rows = options.max_length;
  check_error(options, reclite::ErrorCode::tensor_shape, {"'position_embedding.weight'", "max_length + position_offset = 9"});
}

TEST_CASE("format/sasrec: out-of-range config values are invalid_config") {
  test::TinySasRecOptions options = recbole();
  options.max_length = 0;
  check_error(options, reclite::ErrorCode::invalid_config, {"sasrec.max_length"});
  options = recbole();
  options.spec.mask_value = std::numeric_limits<float>::quiet_NaN();
  check_error(options, reclite::ErrorCode::invalid_config, {"sasrec.mask_value"});
  options = recbole();
  options.spec.layer_norm_epsilon = -1.0f;
  check_error(options, reclite::ErrorCode::invalid_config, {"sasrec.layer_norm_epsilon"});
}

TEST_CASE("format/sasrec: a catalogue entry at the padding row is invalid_item_catalogue") {
  test::TinySasRecOptions options = recbole();
  options.catalogue_includes_padding = true;
  check_error(options, reclite::ErrorCode::invalid_item_catalogue, {"padding row 0"});
}
