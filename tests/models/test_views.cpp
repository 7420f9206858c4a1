// xtensor views see the model's own bytes, with the right shape, without copying.
#include <doctest/doctest.h>

#include <cmath>

#include <xtensor/xmath.hpp>

#include "reclite/models/views.hpp"
#include "reclite/ops/l2_normalize.hpp"
#include "support/fixtures.hpp"

TEST_CASE("models/views: item vectors and tensors are zero-copy views with the file's shapes") {
  auto loaded = reclite::Model::load(test::fixture_path("youtube_dnn_trained.reclite"));
  REQUIRE(loaded);
  const reclite::Model& model = *loaded;
  auto vectors = reclite::views::item_vectors(model);
  REQUIRE(vectors.shape()[0] == model.catalogue().size());
  REQUIRE(vectors.shape()[1] == model.item_dim());
  CHECK(&vectors(0, 0) == model.item_vectors());  // the mapped bytes themselves
  const std::size_t last = model.catalogue().size() - 1;
  CHECK(vectors(last, 3) == model.item_vectors()[last * model.item_dim() + 3]);
  // Normalised items (the fixture's YouTubeDNN normalises): every row has unit norm.
  auto norms = xt::sqrt(xt::sum(vectors * vectors, {1}));
  for (std::size_t row = 0; row < model.catalogue().size(); row += 37) CHECK(norms(row) == doctest::Approx(1.0).epsilon(1e-5));
  for (const auto& info : model.file().tensors()) {
    if (info.dtype != reclite::format::DType::f32) continue;
    auto view = reclite::views::tensor(info);
    REQUIRE(view.dimension() == info.shape.size());
    CHECK(view.size() == info.element_count);
    if (info.element_count > 0) CHECK(view.data() == info.f32());
  }
}
