// YouTubeDNN (Covington et al. 2016): a user tower over user features and the mean-pooled watch history; the
// item vectors are the rows of the item embedding table, L2-normalised when the model says so (DeepMatch >= 0.3,
// torch-rechub).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/architecture.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/tower.hpp"
#include "reclite/ops/l2_normalize.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class YoutubeDnnModel final : public ArchitectureModel {
 public:
  static Result<std::unique_ptr<YoutubeDnnModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::YoutubeDnnConfig& config = *file.youtube_dnn();
    auto model = std::unique_ptr<YoutubeDnnModel>(new YoutubeDnnModel());
    auto user = Tower::build(file, config.user_tower, "user_tower", &catalogue);
    RECLITE_TRY(user);
    model->user_tower_ = std::move(*user);
    const auto dim = static_cast<std::int64_t>(model->user_tower_.output_dim());
    auto table = file.tensor(config.item_embedding, "item_embedding", format::DType::f32, {-1, dim});
    RECLITE_TRY(table);
    model->item_table_ = (*table)->f32();
    model->item_rows_ = static_cast<std::size_t>((*table)->shape[0]);
    if (catalogue.size() > 0 && catalogue.max_row() >= model->item_rows_)
      return fail(ErrorCode::invalid_item_catalogue, file.name() + ": catalogue row " + std::to_string(catalogue.max_row()) +
                                                         " is outside the " + std::to_string(model->item_rows_) +
                                                         "-row item_embedding '" + config.item_embedding + "'");
    model->catalogue_ = &catalogue;
    model->normalize_items_ = config.normalize_items;
    model->user_fields_ = field_pointers(config.user_tower.inputs);
    return model;
  }

  format::Architecture architecture() const noexcept override { return format::Architecture::youtube_dnn; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return user_fields_; }
  std::size_t user_dim() const noexcept override { return user_tower_.output_dim(); }
  std::size_t item_dim() const noexcept override { return user_tower_.output_dim(); }
  WorkspaceSize workspace_size() const noexcept override {
    return WorkspaceSize{user_tower_.workspace_floats(), user_tower_.row_scratch_size(), 0};
  }
  Result<void> check_user(Span<const FieldInput> inputs) const override { return user_tower_.check(inputs); }
  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    user_tower_.evaluate(inputs, output, workspace.floats.data(), workspace.rows.data(), stats);
  }
  void encode_item_entry(std::size_t entry, float* output, Workspace&) const noexcept override {
    const std::size_t dim = item_dim();
    const float* row = item_table_ + static_cast<std::size_t>(catalogue_->row(entry)) * dim;
    if (normalize_items_)
      ops::l2_normalize(row, output, dim);
    else
      std::copy(row, row + dim, output);
  }

 private:
  YoutubeDnnModel() = default;
  Tower user_tower_;
  const Catalogue* catalogue_ = nullptr;
  const float* item_table_ = nullptr;
  std::size_t item_rows_ = 0;
  bool normalize_items_ = false;
  std::vector<const format::InputFieldConfig*> user_fields_;
};

}  // namespace models
RECLITE_END_NAMESPACE
