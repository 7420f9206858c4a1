// ItemFeatures: the inputs of an item-side tower for each catalogue entry. Fields whose ids are item ids take
// the entry itself; the other (categorical) fields read their column of the catalogue's feature_values tensor
// [entries, columns] (i32), every value checked against its vocabulary once at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reclite/core/config.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/catalogue.hpp"
#include "reclite/models/request.hpp"

RECLITE_BEGIN_NAMESPACE
namespace models {

class ItemFeatures {
 public:
  static Result<ItemFeatures> build(const format::ModelFile& file, const Catalogue& catalogue,
                                    const std::vector<const format::InputFieldConfig*>& fields, const std::string& where) {
    ItemFeatures features;
    features.catalogue_ = &catalogue;
    std::size_t columns = 0;
    for (const auto* field : fields) {
      if (field->kind != format::FieldKind::categorical)
        return fail(ErrorCode::invalid_config, file.name() + ": " + where + " field '" + field->name +
                                                   "': item-side fields must be categorical in format 1.0");
      features.columns_.push_back(field->ids == format::IdSpace::item ? -1 : static_cast<std::int64_t>(columns++));
      features.vocabulary_sizes_.push_back(field->vocabulary_size);
    }
    if (columns == 0) return features;
    const std::string& name = file.catalogue().feature_values;
    if (name.empty())
      return fail(ErrorCode::invalid_item_catalogue, file.name() + ": " + where + " has " + std::to_string(columns) +
                                                         " item feature fields but catalogue.feature_values is empty");
    auto tensor = file.tensor(name, "catalogue.feature_values", format::DType::i32,
                              {static_cast<std::int64_t>(catalogue.size()), static_cast<std::int64_t>(columns)});
    RECLITE_TRY(tensor);
    features.values_ = (*tensor)->i32();
    features.column_count_ = columns;
    for (std::size_t f = 0; f < fields.size(); ++f) {
      if (features.columns_[f] < 0) continue;
      for (std::size_t entry = 0; entry < catalogue.size(); ++entry) {
        const std::int32_t value = features.values_[entry * columns + static_cast<std::size_t>(features.columns_[f])];
        if (value < 0 || value >= fields[f]->vocabulary_size)
          return fail(ErrorCode::invalid_item_catalogue,
                      file.name() + ": catalogue.feature_values[" + std::to_string(entry) + "] of field '" + fields[f]->name +
                          "' is " + std::to_string(value) + ", outside the vocabulary [0, " +
                          std::to_string(fields[f]->vocabulary_size) + ")");
      }
    }
    return features;
  }

  std::size_t field_count() const noexcept { return columns_.size(); }

  // Fills one FieldInput per field for catalogue `entry`; `ids` holds field_count() values and backs the spans.
  void fill(std::size_t entry, std::int64_t* ids, FieldInput* inputs) const noexcept {
    for (std::size_t f = 0; f < columns_.size(); ++f) {
      ids[f] = columns_[f] < 0 ? catalogue_->external_id(entry)
                               : values_[entry * column_count_ + static_cast<std::size_t>(columns_[f])];
      inputs[f].ids = Span<const std::int64_t>(ids + f, 1);
      inputs[f].values = Span<const float>();
    }
  }

 private:
  const Catalogue* catalogue_ = nullptr;
  std::vector<std::int64_t> columns_;  // -1: the item id itself
  std::vector<std::int64_t> vocabulary_sizes_;
  const std::int32_t* values_ = nullptr;
  std::size_t column_count_ = 0;
};

}  // namespace models
RECLITE_END_NAMESPACE
