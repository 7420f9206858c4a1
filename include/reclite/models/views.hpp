// Zero-copy xtensor views of a model's data, for tooling and analysis at the edges of an app (an offline
// evaluation, a debugging dump). Hot paths never use them: kernels take raw pointers, and xtensor expressions hide
// temporaries. This is the only reclite header that includes xtensor, so nothing else pays for its templates.
#pragma once

#include <cstddef>
#include <vector>

#include <xtensor/xadapt.hpp>

#include "reclite/core/config.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/model.hpp"

RECLITE_BEGIN_NAMESPACE
namespace views {

// The precomputed item vectors, shape [catalogue size, item_dim], viewed in the mapped file (read-only).
// Empty (shape [0, item_dim]) when the file has none. Valid while the Model lives.
inline auto item_vectors(const Model& model) {
  const float* data = model.item_vectors();
  const std::size_t rows = data != nullptr ? model.catalogue().size() : 0;
  const std::vector<std::size_t> shape{rows, model.item_dim()};
  return xt::adapt(data, rows * model.item_dim(), xt::no_ownership(), shape);
}

// A float32 tensor of the file with its own shape, viewed in place (read-only). The caller checks dtype == f32.
inline auto tensor(const format::TensorInfo& info) {
  std::vector<std::size_t> shape(info.shape.begin(), info.shape.end());
  return xt::adapt(info.f32(), info.element_count, xt::no_ownership(), shape);
}

}  // namespace views
RECLITE_END_NAMESPACE
