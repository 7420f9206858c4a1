// FM two-tower (Rendle 2010 split by field owner; fun-rec fm_recall). With v the field embeddings (dim D) and w
// the item fields' first-order weights:
//   user = [1 ; sum_u v_u]
//   item = [sum_t w_t + 1/2 * sum_f ((sum_t v_t,f)^2 - sum_t v_t,f^2) ; sum_t v_t]
// so <user, item> is the FM score minus the terms that depend on the user alone (they do not change the ranking).
// User fields may be histories (pooled as declared); item fields are categorical and come from the catalogue.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/architecture.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/item_features.hpp"
#include "reclite/models/tower.hpp"
#include "reclite/ops/axpy.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class FmTwoTowerModel final : public ArchitectureModel {
 public:
  static Result<std::unique_ptr<FmTwoTowerModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::FmTwoTowerConfig& config = *file.fm_two_tower();
    auto model = std::unique_ptr<FmTwoTowerModel>(new FmTwoTowerModel());
    model->dim_ = config.embedding_dim;
    if (model->dim_ == 0 || config.user_fields.empty() || config.item_fields.empty())
      return fail(ErrorCode::invalid_config, file.name() + ": fm_two_tower needs embedding_dim > 0 and user and item fields");
    // The sides are towers without layers: their "input" is the concatenation of the field embeddings.
    for (const auto& field : config.user_fields) model->user_config_->inputs.push_back(field.field);
    for (const auto& field : config.item_fields) model->item_config_->inputs.push_back(field.field);
    auto user = Tower::build(file, *model->user_config_, "user_fields", &catalogue);
    RECLITE_TRY(user);
    auto item = Tower::build(file, *model->item_config_, "item_fields", &catalogue);
    RECLITE_TRY(item);
    for (const Tower* side : {&*user, &*item})
      for (const auto& field : side->fields())
        if (field.dim != model->dim_)
          return fail(ErrorCode::tensor_shape, file.name() + ": fm field '" + field.config->name + "' has width " +
                                                   std::to_string(field.dim) + ", expected embedding_dim " +
                                                   std::to_string(model->dim_));
    for (std::size_t f = 0; f < config.item_fields.size(); ++f) {
      const auto& field = config.item_fields[f];
      const std::string role = "item_fields field '" + field.field.name + "' linear";
      auto linear = file.find(field.linear, role);
      RECLITE_TRY(linear);
      auto shaped = (*linear)->shape.size() == 2
                        ? file.tensor(field.linear, role, format::DType::f32, {field.field.vocabulary_size, 1})
                        : file.tensor(field.linear, role, format::DType::f32, {field.field.vocabulary_size});
      RECLITE_TRY(shaped);
      model->linear_.push_back((*shaped)->f32());
    }
    model->user_tower_ = std::move(*user);
    model->item_tower_ = std::move(*item);
    model->user_fields_ = field_pointers(model->user_config_->inputs);
    auto features = ItemFeatures::build(file, catalogue, field_pointers(model->item_config_->inputs), "item_fields");
    RECLITE_TRY(features);
    model->item_features_ = std::move(*features);
    return model;
  }

  format::Architecture architecture() const noexcept override { return format::Architecture::fm_two_tower; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return user_fields_; }
  std::size_t user_dim() const noexcept override { return dim_ + 1; }
  std::size_t item_dim() const noexcept override { return dim_ + 1; }
  WorkspaceSize workspace_size() const noexcept override {
    WorkspaceSize size{user_tower_.workspace_floats() + user_tower_.output_dim(), user_tower_.row_scratch_size(), 0};
    return size.include({item_tower_.workspace_floats() + item_tower_.output_dim(), item_tower_.row_scratch_size(),
                         item_features_.field_count()});
  }
  Result<void> check_user(Span<const FieldInput> inputs) const override { return user_tower_.check(inputs); }

  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    float* embeddings = workspace.floats.data() + user_tower_.workspace_floats();
    user_tower_.evaluate(inputs, embeddings, workspace.floats.data(), workspace.rows.data(), stats);
    output[0] = 1.0f;
    sum_fields(embeddings, user_tower_.fields().size(), output + 1);
  }

  void encode_item_entry(std::size_t entry, float* output, Workspace& workspace) const noexcept override {
    const std::size_t fields = item_features_.field_count();
    item_features_.fill(entry, workspace.item_ids.data(), workspace.item_inputs.data());
    float* embeddings = workspace.floats.data() + item_tower_.workspace_floats();
    item_tower_.evaluate(Span<const FieldInput>(workspace.item_inputs.data(), fields), embeddings,
                         workspace.floats.data(), workspace.rows.data(), nullptr);
    float* sum = output + 1;
    sum_fields(embeddings, fields, sum);
    float first_order = 0.0f;
    for (std::size_t f = 0; f < fields; ++f) {
      const auto row = static_cast<std::size_t>(item_tower_.lookup_row(item_tower_.fields()[f], workspace.item_ids[f]));
      first_order += linear_[f][row];
    }
    float pairwise = 0.0f;
    for (std::size_t d = 0; d < dim_; ++d) {
      float squares = 0.0f;
      for (std::size_t f = 0; f < fields; ++f) squares += embeddings[f * dim_ + d] * embeddings[f * dim_ + d];
      pairwise += sum[d] * sum[d] - squares;
    }
    output[0] = first_order + 0.5f * pairwise;
  }

 private:
  FmTwoTowerModel() : user_config_(new format::TowerConfig()), item_config_(new format::TowerConfig()) {}

  void sum_fields(const float* embeddings, std::size_t fields, float* sum) const noexcept {
    std::copy(embeddings, embeddings + dim_, sum);
    for (std::size_t f = 1; f < fields; ++f) ops::add_to(embeddings + f * dim_, sum, dim_);
  }

  std::size_t dim_ = 0;
  // Held by pointer: the towers keep pointers into them.
  std::unique_ptr<format::TowerConfig> user_config_;
  std::unique_ptr<format::TowerConfig> item_config_;
  Tower user_tower_;
  Tower item_tower_;
  ItemFeatures item_features_;
  std::vector<const float*> linear_;
  std::vector<const format::InputFieldConfig*> user_fields_;
};

}  // namespace models
RECLITE_END_NAMESPACE
