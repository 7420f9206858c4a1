// ModelFile: a reclite model file, opened from a path (memory-mapped, zero-copy) or from a caller-owned buffer,
// verified, and described in plain C++ (format/model_config.hpp). Architecture-specific meaning (which tensors,
// which shapes) is checked by models/, which asks for tensors through `tensor()` so every message has one form.
//
// Verification order (conventions §6): size and identifier; flatbuffers::Verifier over every offset; format
// version (a newer major is refused, naming both versions); every tensor's byte size equals shape x element size
// (overflow-checked) and its data is aligned for its type; CRC-32 of every tensor (unless disabled); catalogue
// ids sorted, unique and in range. Only then are views built, and everything above trusts them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "reclite/core/bounds.hpp"
#include "reclite/core/checksum.hpp"
#include "reclite/core/config.hpp"
#include "reclite/core/mapped_file.hpp"
#include "reclite/core/result.hpp"
#include "reclite/format/model_config.hpp"
#include "reclite/format/model_generated.h"

RECLITE_BEGIN_NAMESPACE
namespace format {

// The format this reader understands. A file with a newer major is refused; a newer minor only adds fields.
inline constexpr std::uint16_t format_major = 1;
inline constexpr std::uint16_t format_minor = 0;

struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;
  std::size_t byte_size = 0;
  std::size_t element_count = 0;
  std::uint32_t stored_crc32 = 0;  // the CRC-32 the converter stored (checked at open unless disabled)

  const float* f32() const noexcept { return reinterpret_cast<const float*>(data); }
  const std::int32_t* i32() const noexcept { return reinterpret_cast<const std::int32_t*>(data); }
};

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

struct FileOptions {
  bool verify_checksums = true;  // CRC-32 of every tensor at open: a few ms per 100k x 64 table
};

class ModelFile {
 public:
  // Maps `path` and verifies it.
  static Result<ModelFile> open(const std::string& path, const FileOptions& options = {}) {
    auto mapped = MappedFile::open(path);
    RECLITE_TRY(mapped);
    return from_mapped(std::move(*mapped), options);
  }

  // Verifies a caller-owned buffer (8-byte aligned), which must outlive the ModelFile and everything built on it.
  static Result<ModelFile> from_buffer(const void* data, std::size_t size, const std::string& name,
                                       const FileOptions& options = {}) {
    if (data == nullptr && size != 0) return fail(ErrorCode::invalid_argument, name + ": null buffer");
    if (reinterpret_cast<std::uintptr_t>(data) % 8 != 0)
      return fail(ErrorCode::invalid_argument, name + ": buffer must be 8-byte aligned");
    return from_mapped(MappedFile::view(data, size, name), options);
  }

  const std::string& name() const noexcept { return file_->path(); }
  std::size_t file_size() const noexcept { return file_->size(); }
  bool is_memory_mapped() const noexcept { return file_->is_memory_mapped(); }
  std::uint16_t version_major() const noexcept { return root_->format_major(); }
  std::uint16_t version_minor() const noexcept { return root_->format_minor(); }
  std::string producer() const { return root_->producer() ? root_->producer()->str() : std::string(); }
  Architecture architecture() const noexcept { return architecture_; }
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
  const CatalogueView& catalogue() const noexcept { return catalogue_; }
  const DssmConfig* dssm() const noexcept { return dssm_.get(); }
  const YoutubeDnnConfig* youtube_dnn() const noexcept { return youtube_dnn_.get(); }
  const FmTwoTowerConfig* fm_two_tower() const noexcept { return fm_two_tower_.get(); }
  const SasRecConfig* sasrec() const noexcept { return sasrec_.get(); }
  const MindConfig* mind() const noexcept { return mind_.get(); }
  const SdmConfig* sdm() const noexcept { return sdm_.get(); }
  const std::vector<SelfTestSampleView>& self_test() const noexcept { return self_test_; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return metadata_; }

  // The tensor called `name`, which the caller's `role` (e.g. "user_tower.layers[0].weight") requires.
  Result<const TensorInfo*> find(const std::string& name, const std::string& role) const {
    auto found = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                  [this](std::size_t i, const std::string& key) { return tensors_[i].name < key; });
    if (found == by_name_.end() || tensors_[*found].name != name)
      return fail(ErrorCode::missing_tensor,
                  this->name() + ": tensor '" + name + "' (" + role + ") is not in the file");
    return &tensors_[*found];
  }

  // The tensor `name` with the given dtype and shape; -1 in `shape` accepts any extent and is reported back.
  Result<const TensorInfo*> tensor(const std::string& name, const std::string& role, DType dtype,
                                   const std::vector<std::int64_t>& shape) const {
    auto found = find(name, role);
    RECLITE_TRY(found);
    const TensorInfo* info = *found;
    if (info->dtype != dtype)
      return fail(ErrorCode::tensor_dtype, this->name() + ": tensor '" + name + "' (" + role + "): expected dtype " +
                                               dtype_name(dtype) + ", got " + dtype_name(info->dtype));
    bool same = info->shape.size() == shape.size();
    for (std::size_t i = 0; same && i < shape.size(); ++i) same = shape[i] < 0 || shape[i] == info->shape[i];
    if (!same)
      return fail(ErrorCode::tensor_shape, this->name() + ": tensor '" + name + "' (" + role + "): expected shape " +
                                               shape_string(shape) + ", got " + shape_string(info->shape));
    return info;
  }

 private:
  static Result<ModelFile> from_mapped(MappedFile mapped, const FileOptions& options) {
    ModelFile model;
    model.file_ = std::make_unique<MappedFile>(std::move(mapped));
    RECLITE_TRY(model.verify_container());
    RECLITE_TRY(model.read_tensors(options));
    RECLITE_TRY(model.read_config());
    RECLITE_TRY(model.read_catalogue());
    model.read_self_test_and_metadata();
    return model;
  }

  Result<void> verify_container() {
    const std::string& path = file_->path();
    const std::uint8_t* data = file_->data();
    const std::size_t size = file_->size();
    // Root offset (4) + identifier (4) at least.
    if (size < 8 || !fbs::ModelBufferHasIdentifier(data))
      return fail(ErrorCode::not_a_model_file,
                  path + ": not a reclite model file (expected file identifier 'RCLT' at byte 4)");
    if (size >= FLATBUFFERS_MAX_BUFFER_SIZE)
      return fail(ErrorCode::corrupt_file, path + ": file of " + std::to_string(size) + " bytes exceeds 2 GiB");
    // Tensors are few; tables are fields, layers, samples. One million is far above any real model.
    flatbuffers::Verifier verifier(data, size, /*max_depth=*/64, /*max_tables=*/1000000);
    if (!fbs::VerifyModelBuffer(verifier))
      return fail(ErrorCode::corrupt_file,
                  path + ": FlatBuffers verification failed (truncated or corrupted file, or an offset out of range)");
    root_ = fbs::GetModel(data);
    if (root_->format_major() > format_major)
      return fail(ErrorCode::unsupported_format_version,
                  path + ": format version " + std::to_string(root_->format_major()) + "." +
                      std::to_string(root_->format_minor()) + " is newer than this reader's " +
                      std::to_string(format_major) + "." + std::to_string(format_minor) + "; update reclite");
    if (root_->format_major() == 0)
      return fail(ErrorCode::unsupported_format_version, path + ": format version 0 is not a released format");
    return {};
  }

  Result<void> read_tensors(const FileOptions& options) {
    const std::string& path = file_->path();
    const auto* tensors = root_->tensors();
    tensors_.reserve(tensors->size());
    for (flatbuffers::uoffset_t i = 0; i < tensors->size(); ++i) {
      const fbs::Tensor* tensor = tensors->Get(i);
      TensorInfo info;
      info.name = tensor->name()->str();
      const auto dtype = static_cast<std::uint8_t>(tensor->dtype());
      if (dtype > static_cast<std::uint8_t>(DType::i64))
        return fail(ErrorCode::tensor_dtype, path + ": tensor '" + info.name + "': unknown dtype " + std::to_string(dtype));
      info.dtype = static_cast<DType>(dtype);
      std::size_t elements = 1;
      for (flatbuffers::uoffset_t d = 0; d < tensor->shape()->size(); ++d) {
        const std::int64_t extent = tensor->shape()->Get(d);
        info.shape.push_back(extent);
        if (extent < 0 || !checked_multiply(elements, static_cast<std::size_t>(extent), &elements))
          return fail(ErrorCode::tensor_shape, path + ": tensor '" + info.name + "': invalid shape " + shape_string(info.shape));
      }
      if (tensor->shape()->size() > 8)
        return fail(ErrorCode::tensor_shape, path + ": tensor '" + info.name + "': rank above 8");
      std::size_t expected_bytes = 0;
      if (!checked_multiply(elements, dtype_size(info.dtype), &expected_bytes) || expected_bytes != tensor->data()->size())
        return fail(ErrorCode::tensor_size, path + ": tensor '" + info.name + "': shape " + shape_string(info.shape) +
                                                " of " + dtype_name(info.dtype) + " needs " + std::to_string(expected_bytes) +
                                                " bytes, data has " + std::to_string(tensor->data()->size()));
      info.data = tensor->data()->data();
      info.byte_size = tensor->data()->size();
      info.element_count = elements;
      info.stored_crc32 = tensor->crc32();
      if (reinterpret_cast<std::uintptr_t>(info.data) % dtype_size(info.dtype) != 0)
        return fail(ErrorCode::corrupt_file, path + ": tensor '" + info.name + "': data is not aligned to its element size");
      if (options.verify_checksums && crc32(info.data, info.byte_size) != tensor->crc32())
        return fail(ErrorCode::checksum_mismatch, path + ": tensor '" + info.name + "': CRC-32 of the data does not match");
      tensors_.push_back(std::move(info));
    }
    by_name_.resize(tensors_.size());
    for (std::size_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
    std::sort(by_name_.begin(), by_name_.end(), [this](std::size_t a, std::size_t b) { return tensors_[a].name < tensors_[b].name; });
    for (std::size_t i = 1; i < by_name_.size(); ++i)
      if (tensors_[by_name_[i]].name == tensors_[by_name_[i - 1]].name)
        return fail(ErrorCode::corrupt_file, path + ": tensor name '" + tensors_[by_name_[i]].name + "' appears twice");
    return {};
  }

  static std::string text(const flatbuffers::String* value) { return value ? value->str() : std::string(); }

  Result<InputFieldConfig> read_field(const fbs::InputField* field, const std::string& where) const {
    InputFieldConfig config;
    config.name = field->name()->str();
    const auto kind = static_cast<std::uint8_t>(field->kind());
    const auto ids = static_cast<std::uint8_t>(field->ids());
    const auto pooling = static_cast<std::uint8_t>(field->pooling());
    if (kind > 2 || ids > 1 || pooling > 2)
      return fail(ErrorCode::invalid_config, file_->path() + ": " + where + " field '" + config.name +
                                                 "': unknown kind, id space or pooling value");
    config.kind = static_cast<FieldKind>(kind);
    config.ids = static_cast<IdSpace>(ids);
    config.pooling = static_cast<Pooling>(pooling);
    config.embedding = text(field->embedding());
    config.vocabulary_size = field->vocabulary_size();
    config.max_length = field->max_length();
    config.mean_epsilon = field->mean_epsilon();
    config.padding_row = field->padding_row();
    config.width = field->width();
    return config;
  }

  Result<TowerConfig> read_tower(const fbs::Tower* tower, const std::string& where) const {
    TowerConfig config;
    for (flatbuffers::uoffset_t i = 0; i < tower->inputs()->size(); ++i) {
      auto field = read_field(tower->inputs()->Get(i), where);
      RECLITE_TRY(field);
      config.inputs.push_back(std::move(*field));
    }
    if (tower->layers() != nullptr) {
      for (flatbuffers::uoffset_t i = 0; i < tower->layers()->size(); ++i) {
        const fbs::DenseLayer* layer = tower->layers()->Get(i);
        const auto activation = static_cast<std::uint8_t>(layer->activation());
        if (activation > static_cast<std::uint8_t>(Activation::gelu_erf))
          return fail(ErrorCode::invalid_config, file_->path() + ": " + where + ".layers[" + std::to_string(i) +
                                                     "]: unknown activation " + std::to_string(activation));
        config.layers.push_back(DenseLayerConfig{layer->weight()->str(), text(layer->bias()),
                                                 static_cast<Activation>(activation)});
      }
    }
    config.l2_normalize = tower->l2_normalize();
    config.temperature = tower->temperature();
    return config;
  }

  Result<std::vector<FmFieldConfig>> read_fm_fields(const flatbuffers::Vector<flatbuffers::Offset<fbs::FmField>>* fields,
                                                    const std::string& where) const {
    std::vector<FmFieldConfig> result;
    for (flatbuffers::uoffset_t i = 0; i < fields->size(); ++i) {
      auto field = read_field(fields->Get(i)->field(), where);
      RECLITE_TRY(field);
      result.push_back(FmFieldConfig{std::move(*field), text(fields->Get(i)->linear())});
    }
    return result;
  }

  Result<void> read_config() {
    const std::string& path = file_->path();
    const auto architecture = static_cast<std::uint16_t>(root_->architecture());
    architecture_ = architecture <= static_cast<std::uint16_t>(Architecture::sdm) ? static_cast<Architecture>(architecture)
                                                                                 : Architecture::unknown;
    auto mismatch = [&](const char* expected) {
      return fail(ErrorCode::invalid_config, path + ": architecture '" + architecture_name(architecture_) +
                                                 "' needs a " + expected + " config");
    };
    switch (architecture_) {
      case Architecture::dssm: {
        const auto* config = root_->config_as_DssmConfig();
        if (config == nullptr) return mismatch("DssmConfig");
        auto user = read_tower(config->user_tower(), "user_tower");
        RECLITE_TRY(user);
        auto item = read_tower(config->item_tower(), "item_tower");
        RECLITE_TRY(item);
        dssm_ = std::make_unique<DssmConfig>(DssmConfig{std::move(*user), std::move(*item)});
        return {};
      }
      case Architecture::youtube_dnn: {
        const auto* config = root_->config_as_YoutubeDnnConfig();
        if (config == nullptr) return mismatch("YoutubeDnnConfig");
        auto user = read_tower(config->user_tower(), "user_tower");
        RECLITE_TRY(user);
        youtube_dnn_ = std::make_unique<YoutubeDnnConfig>(
            YoutubeDnnConfig{std::move(*user), config->item_embedding()->str(), config->normalize_items()});
        return {};
      }
      case Architecture::fm_two_tower: {
        const auto* config = root_->config_as_FmTwoTowerConfig();
        if (config == nullptr) return mismatch("FmTwoTowerConfig");
        auto user = read_fm_fields(config->user_fields(), "user_fields");
        RECLITE_TRY(user);
        auto item = read_fm_fields(config->item_fields(), "item_fields");
        RECLITE_TRY(item);
        fm_two_tower_ = std::make_unique<FmTwoTowerConfig>(
            FmTwoTowerConfig{std::move(*user), std::move(*item), config->embedding_dim()});
        return {};
      }
      case Architecture::sasrec: {
        const auto* config = root_->config_as_SasRecConfig();
        if (config == nullptr) return mismatch("SasRecConfig");
        auto sasrec = read_sasrec(config);
        RECLITE_TRY(sasrec);
        sasrec_ = std::make_unique<SasRecConfig>(std::move(*sasrec));
        return {};
      }
      case Architecture::mind: {
        const auto* config = root_->config_as_MindConfig();
        if (config == nullptr) return mismatch("MindConfig");
        auto mind = read_mind(config);
        RECLITE_TRY(mind);
        mind_ = std::make_unique<MindConfig>(std::move(*mind));
        return {};
      }
      case Architecture::sdm: {
        const auto* config = root_->config_as_SdmConfig();
        if (config == nullptr) return mismatch("SdmConfig");
        auto sdm = read_sdm(config);
        RECLITE_TRY(sdm);
        sdm_ = std::make_unique<SdmConfig>(std::move(*sdm));
        return {};
      }
      default:
        return fail(ErrorCode::invalid_config, path + ": architecture " + std::to_string(architecture) +
                                                   " is not supported by this reader (dssm, youtube_dnn, fm_two_tower, "
                                                   "sasrec, mind, sdm)");
    }
  }

  // Enum values are checked here (a file may hold values this reader does not know); ranges and tensors are
  // checked by models/sasrec.hpp, which knows what they mean.
  Result<SasRecConfig> read_sasrec(const fbs::SasRecConfig* config) const {
    const std::string& path = file_->path();
    SasRecConfig result;
    result.variant = text(config->variant());
    result.history_field = config->history_field()->str();
    result.item_embedding = config->item_embedding()->str();
    result.position_embedding = config->position_embedding()->str();
    result.max_length = config->max_length();
    result.hidden_size = config->hidden_size();
    result.heads = config->heads();
    result.inner_size = config->inner_size();
    const auto activation = static_cast<std::uint8_t>(config->activation());
    if (activation > static_cast<std::uint8_t>(Activation::gelu_erf))
      return fail(ErrorCode::invalid_config, path + ": sasrec.activation: unknown value " + std::to_string(activation));
    result.activation = static_cast<Activation>(activation);
    result.layer_norm_epsilon = config->layer_norm_epsilon();
    result.embedding_scale = config->embedding_scale();
    result.padding_row = config->padding_row();
    const auto side = static_cast<std::uint8_t>(config->padding_side());
    if (side > static_cast<std::uint8_t>(PaddingSide::left))
      return fail(ErrorCode::invalid_config, path + ": sasrec.padding_side: unknown value " + std::to_string(side));
    result.padding_side = static_cast<PaddingSide>(side);
    result.position_offset = config->position_offset();
    result.pads_use_position_zero = config->pads_use_position_zero();
    result.embedding_norm_weight = text(config->embedding_norm_weight());
    result.embedding_norm_bias = text(config->embedding_norm_bias());
    result.mask_padding_keys = config->mask_padding_keys();
    result.mask_value = config->mask_value();
    result.zero_padding_rows = config->zero_padding_rows();
    const auto style = static_cast<std::uint8_t>(config->block_style());
    if (style > static_cast<std::uint8_t>(SasRecBlockStyle::pre_norm))
      return fail(ErrorCode::invalid_config, path + ": sasrec.block_style: unknown value " + std::to_string(style));
    result.block_style = static_cast<SasRecBlockStyle>(style);
    for (const fbs::TransformerLayer* layer : *config->layers()) {
      TransformerLayerConfig names;
      names.query_weight = layer->query_weight()->str();
      names.query_bias = text(layer->query_bias());
      names.key_weight = layer->key_weight()->str();
      names.key_bias = text(layer->key_bias());
      names.value_weight = layer->value_weight()->str();
      names.value_bias = text(layer->value_bias());
      names.output_weight = text(layer->output_weight());
      names.output_bias = text(layer->output_bias());
      names.attention_norm_weight = layer->attention_norm_weight()->str();
      names.attention_norm_bias = layer->attention_norm_bias()->str();
      names.inner_weight = layer->inner_weight()->str();
      names.inner_bias = text(layer->inner_bias());
      names.outer_weight = layer->outer_weight()->str();
      names.outer_bias = text(layer->outer_bias());
      names.feed_forward_norm_weight = layer->feed_forward_norm_weight()->str();
      names.feed_forward_norm_bias = layer->feed_forward_norm_bias()->str();
      result.layers.push_back(std::move(names));
    }
    result.final_norm_weight = text(config->final_norm_weight());
    result.final_norm_bias = text(config->final_norm_bias());
    return result;
  }

  Result<std::vector<InputFieldConfig>> read_fields(const flatbuffers::Vector<flatbuffers::Offset<fbs::InputField>>* fields,
                                                    const std::string& where) const {
    std::vector<InputFieldConfig> result;
    if (fields == nullptr) return result;
    for (flatbuffers::uoffset_t i = 0; i < fields->size(); ++i) {
      auto field = read_field(fields->Get(i), where);
      RECLITE_TRY(field);
      result.push_back(std::move(*field));
    }
    return result;
  }

  // An enum value read as its byte, refused when above the largest value this reader knows.
  template <class Enum, class Stored>
  Result<Enum> read_enum(Stored stored, Enum largest, const std::string& where) const {
    const auto value = static_cast<std::uint8_t>(stored);
    if (value > static_cast<std::uint8_t>(largest))
      return fail(ErrorCode::invalid_config, file_->path() + ": " + where + ": unknown value " + std::to_string(value));
    return static_cast<Enum>(value);
  }

  // Enum values are checked here; ranges and tensors by models/mind.hpp.
  Result<MindConfig> read_mind(const fbs::MindConfig* config) const {
    MindConfig result;
    result.variant = text(config->variant());
    auto histories = read_fields(config->history_fields(), "mind.history_fields");
    RECLITE_TRY(histories);
    result.history_fields = std::move(*histories);
    auto combine = read_enum(config->behaviour_combine(), BehaviourCombine::mean, "mind.behaviour_combine");
    RECLITE_TRY(combine);
    result.behaviour_combine = *combine;
    auto side = read_enum(config->padding_side(), PaddingSide::left, "mind.padding_side");
    RECLITE_TRY(side);
    result.padding_side = *side;
    result.max_length = config->max_length();
    result.hidden_size = config->hidden_size();
    result.bilinear_weight = config->bilinear_weight()->str();
    result.interests = config->interests();
    result.routing_iterations = config->routing_iterations();
    result.initial_logits = config->initial_logits()->str();
    auto softmax = read_enum(config->routing_softmax(), RoutingSoftmax::over_capsules, "mind.routing_softmax");
    RECLITE_TRY(softmax);
    result.routing_softmax = *softmax;
    auto padding = read_enum(config->routing_padding(), RoutingPadding::zero_after_softmax, "mind.routing_padding");
    RECLITE_TRY(padding);
    result.routing_padding = *padding;
    result.pad_logit = config->pad_logit();
    result.squash_epsilon = config->squash_epsilon();
    result.dynamic_interests = config->dynamic_interests();
    result.inactive_logit = config->inactive_logit();
    result.mask_inactive_interests = config->mask_inactive_interests();
    result.update_logits_on_last_iteration = config->update_logits_on_last_iteration();
    auto users = read_fields(config->user_fields(), "mind.user_fields");
    RECLITE_TRY(users);
    result.user_fields = std::move(*users);
    if (config->head_layers() != nullptr) {
      for (flatbuffers::uoffset_t i = 0; i < config->head_layers()->size(); ++i) {
        const fbs::DenseLayer* layer = config->head_layers()->Get(i);
        auto activation = read_enum(layer->activation(), Activation::gelu_erf,
                                    "mind.head_layers[" + std::to_string(i) + "].activation");
        RECLITE_TRY(activation);
        result.head_layers.push_back(DenseLayerConfig{layer->weight()->str(), text(layer->bias()), *activation});
      }
    }
    result.head_l2_normalize = config->head_l2_normalize();
    result.label_attention_power = config->label_attention_power();
    result.item_embedding = config->item_embedding()->str();
    result.normalize_items = config->normalize_items();
    return result;
  }

  // Enum values are checked here; ranges and tensors by models/sdm.hpp.
  Result<SdmConfig> read_sdm(const fbs::SdmConfig* config) const {
    SdmConfig result;
    result.variant = text(config->variant());
    result.units = config->units();
    auto users = read_fields(config->user_fields(), "sdm.user_fields");
    RECLITE_TRY(users);
    result.user_fields = std::move(*users);
    result.profile_weight = config->profile_weight()->str();
    result.profile_bias = text(config->profile_bias());
    auto shorts = read_fields(config->short_fields(), "sdm.short_fields");
    RECLITE_TRY(shorts);
    result.short_fields = std::move(*shorts);
    auto longs = read_fields(config->long_fields(), "sdm.long_fields");
    RECLITE_TRY(longs);
    result.long_fields = std::move(*longs);
    result.short_length = config->short_length();
    result.long_length = config->long_length();
    for (const flatbuffers::String* name : *config->long_attention_weights()) result.long_attention_weights.push_back(text(name));
    if (config->long_attention_biases() != nullptr)
      for (const flatbuffers::String* name : *config->long_attention_biases()) result.long_attention_biases.push_back(text(name));
    result.long_output_weight = config->long_output_weight()->str();
    result.long_output_bias = text(config->long_output_bias());
    result.short_input_weight = config->short_input_weight()->str();
    result.short_input_bias = text(config->short_input_bias());
    result.lstm_input_weight = config->lstm_input_weight()->str();
    result.lstm_recurrent_weight = config->lstm_recurrent_weight()->str();
    result.lstm_bias = text(config->lstm_bias());
    auto order = read_enum(config->lstm_gate_order(), LstmGateOrder::ifco, "sdm.lstm_gate_order");
    RECLITE_TRY(order);
    result.lstm_gate_order = *order;
    result.lstm_forget_bias = config->lstm_forget_bias();
    result.lstm_layers = config->lstm_layers();
    result.attention_qkv_weight = config->attention_qkv_weight()->str();
    result.attention_output_weight = config->attention_output_weight()->str();
    result.attention_heads = config->attention_heads();
    result.attention_mask_value = config->attention_mask_value();
    result.attention_norm_weight = config->attention_norm_weight()->str();
    result.attention_norm_bias = config->attention_norm_bias()->str();
    result.attention_norm_epsilon = config->attention_norm_epsilon();
    result.user_attention_weight = config->user_attention_weight()->str();
    result.user_attention_bias = text(config->user_attention_bias());
    result.gate_weight = config->gate_weight()->str();
    result.gate_bias = text(config->gate_bias());
    result.item_embedding = config->item_embedding()->str();
    result.normalize_items = config->normalize_items();
    return result;
  }

  Result<void> read_catalogue() {
    const std::string& path = file_->path();
    const fbs::ItemCatalogue* catalogue = root_->catalogue();
    if (catalogue == nullptr) return {};
    const std::size_t count = catalogue->external_ids()->size();
    catalogue_.count = count;
    catalogue_.external_ids = catalogue->external_ids()->data();
    catalogue_.order_by_external_id = catalogue->order_by_external_id()->data();
    catalogue_.feature_values = text(catalogue->feature_values());
    catalogue_.item_vectors = text(catalogue->item_vectors());
    if (count > 0xFFFFFFFFull)
      return fail(ErrorCode::invalid_item_catalogue, path + ": catalogue of " + std::to_string(count) + " items exceeds 2^32");
    if (catalogue->order_by_external_id()->size() != count)
      return fail(ErrorCode::invalid_item_catalogue, path + ": catalogue.order_by_external_id has " +
                                                         std::to_string(catalogue->order_by_external_id()->size()) +
                                                         " entries, expected " + std::to_string(count));
    if (catalogue->item_rows() != nullptr) {
      if (catalogue->item_rows()->size() != count)
        return fail(ErrorCode::invalid_item_catalogue, path + ": catalogue.item_rows has " +
                                                           std::to_string(catalogue->item_rows()->size()) +
                                                           " entries, expected " + std::to_string(count));
      catalogue_.item_rows = catalogue->item_rows()->data();
    }
    // Strictly increasing external ids along the order, with every entry number in range, make the order a
    // permutation and the ids unique: binary search over it is then well defined.
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint32_t entry = catalogue_.order_by_external_id[i];
      if (entry >= count)
        return fail(ErrorCode::invalid_item_catalogue, path + ": catalogue.order_by_external_id[" + std::to_string(i) +
                                                           "] = " + std::to_string(entry) + " is out of range");
      if (i > 0 && catalogue_.external_ids[catalogue_.order_by_external_id[i - 1]] >= catalogue_.external_ids[entry])
        return fail(ErrorCode::invalid_item_catalogue,
                    path + ": catalogue external ids are not unique or not sorted by order_by_external_id at position " +
                        std::to_string(i));
    }
    return {};
  }

  void read_self_test_and_metadata() {
    if (root_->self_test() != nullptr) {
      for (const fbs::SelfTestSample* sample : *root_->self_test()) {
        SelfTestSampleView view;
        view.target = sample->target() == fbs::SelfTestTarget::item_vector ? SelfTestTarget::item_vector
                                                                            : SelfTestTarget::user_vector;
        view.item_id = sample->item_id();
        view.tolerance = sample->tolerance();
        view.expected.assign(sample->expected()->begin(), sample->expected()->end());
        for (const fbs::FieldValue* value : *sample->inputs()) {
          FieldValueView field;
          field.field = value->field()->str();
          if (value->ids()) field.ids.assign(value->ids()->begin(), value->ids()->end());
          if (value->values()) field.values.assign(value->values()->begin(), value->values()->end());
          view.inputs.push_back(std::move(field));
        }
        self_test_.push_back(std::move(view));
      }
    }
    if (root_->metadata() != nullptr)
      for (const fbs::KeyValue* pair : *root_->metadata()) metadata_.emplace_back(pair->key()->str(), text(pair->value()));
  }

  // Held by pointer so that views into the mapping survive moves of ModelFile.
  std::unique_ptr<MappedFile> file_;
  const fbs::Model* root_ = nullptr;
  Architecture architecture_ = Architecture::unknown;
  std::vector<TensorInfo> tensors_;
  std::vector<std::size_t> by_name_;
  CatalogueView catalogue_;
  std::unique_ptr<DssmConfig> dssm_;
  std::unique_ptr<YoutubeDnnConfig> youtube_dnn_;
  std::unique_ptr<FmTwoTowerConfig> fm_two_tower_;
  std::unique_ptr<SasRecConfig> sasrec_;
  std::unique_ptr<MindConfig> mind_;
  std::unique_ptr<SdmConfig> sdm_;
  std::vector<SelfTestSampleView> self_test_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace format
RECLITE_END_NAMESPACE
