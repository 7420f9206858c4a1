// DSSM (Huang et al. 2013; two-tower retrieval as in DeepMatch and torch-rechub): a user tower and an item
// tower (models/tower.hpp), score = <user, item>. Item-tower inputs come from the catalogue (item_features.hpp).
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

RECLITE_BEGIN_NAMESPACE
namespace models {

class DssmModel final : public ArchitectureModel {
 public:
  static Result<std::unique_ptr<DssmModel>> build(const format::ModelFile& file, const Catalogue& catalogue) {
    const format::DssmConfig& config = *file.dssm();
    auto model = std::unique_ptr<DssmModel>(new DssmModel());
    auto user = Tower::build(file, config.user_tower, "user_tower", &catalogue);
    RECLITE_TRY(user);
    auto item = Tower::build(file, config.item_tower, "item_tower", &catalogue);
    RECLITE_TRY(item);
    if (user->output_dim() != item->output_dim())
      return fail(ErrorCode::invalid_config, file.name() + ": user tower gives " + std::to_string(user->output_dim()) +
                                                 " values but item tower gives " + std::to_string(item->output_dim()));
    model->user_tower_ = std::move(*user);
    model->item_tower_ = std::move(*item);
    model->user_fields_ = field_pointers(config.user_tower.inputs);
    auto features = ItemFeatures::build(file, catalogue, field_pointers(config.item_tower.inputs), "item_tower");
    RECLITE_TRY(features);
    model->item_features_ = std::move(*features);
    return model;
  }

  format::Architecture architecture() const noexcept override { return format::Architecture::dssm; }
  const std::vector<const format::InputFieldConfig*>& user_fields() const noexcept override { return user_fields_; }
  std::size_t user_dim() const noexcept override { return user_tower_.output_dim(); }
  std::size_t item_dim() const noexcept override { return item_tower_.output_dim(); }
  WorkspaceSize workspace_size() const noexcept override {
    WorkspaceSize size{user_tower_.workspace_floats(), user_tower_.row_scratch_size(), 0};
    return size.include({item_tower_.workspace_floats(), item_tower_.row_scratch_size(), item_features_.field_count()});
  }
  Result<void> check_user(Span<const FieldInput> inputs) const override { return user_tower_.check(inputs); }
  void encode_user(Span<const FieldInput> inputs, float* output, Workspace& workspace,
                   EncodeStats* stats) const noexcept override {
    user_tower_.evaluate(inputs, output, workspace.floats.data(), workspace.rows.data(), stats);
  }
  void encode_item_entry(std::size_t entry, float* output, Workspace& workspace) const noexcept override {
    item_features_.fill(entry, workspace.item_ids.data(), workspace.item_inputs.data());
    item_tower_.evaluate(Span<const FieldInput>(workspace.item_inputs.data(), item_features_.field_count()), output,
                         workspace.floats.data(), workspace.rows.data(), nullptr);
  }

 private:
  DssmModel() = default;
  Tower user_tower_;
  Tower item_tower_;
  ItemFeatures item_features_;
  std::vector<const format::InputFieldConfig*> user_fields_;
};

}  // namespace models
RECLITE_END_NAMESPACE
