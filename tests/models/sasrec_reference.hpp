// A scalar SASRec in double precision, written from converters/reclite_convert/modules/sasrec.py line by line
// (not from the engine): the whole max_length window is always evaluated, pads included, with the full
// [T, T] additive or -inf mask. The oracle for tests/models/test_sasrec.cpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "format/tiny_sasrec.hpp"

namespace test {

using Matrix = std::vector<std::vector<double>>;

inline Matrix reference_linear(const TinySasRec& model, const Matrix& x, const std::string& weight_name,
                               const std::string& bias_name) {
  const auto& weight = model.tensor(weight_name);
  const std::size_t in = x.empty() ? 0 : x[0].size();
  const std::size_t out = weight.size() / in;
  Matrix y(x.size(), std::vector<double>(out, 0.0));
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double sum = model.has(bias_name) ? model.tensor(bias_name)[o] : 0.0;
      for (std::size_t i = 0; i < in; ++i) sum += static_cast<double>(weight[o * in + i]) * x[r][i];
      y[r][o] = sum;
    }
  return y;
}

inline Matrix reference_layer_norm(const TinySasRec& model, const Matrix& x, const std::string& prefix) {
  const auto& gamma = model.tensor(prefix + ".weight");
  const auto& beta = model.tensor(prefix + ".bias");
  const double epsilon = model.options.spec.layer_norm_epsilon;
  Matrix y = x;
  for (auto& row : y) {
    double mean = 0, variance = 0;
    for (double v : row) mean += v;
    mean /= static_cast<double>(row.size());
    for (double v : row) variance += (v - mean) * (v - mean);
    variance /= static_cast<double>(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) / std::sqrt(variance + epsilon) * gamma[i] + beta[i];
  }
  return y;
}

inline Matrix reference_add(Matrix a, const Matrix& b) {
  for (std::size_t r = 0; r < a.size(); ++r)
    for (std::size_t i = 0; i < a[r].size(); ++i) a[r][i] += b[r][i];
  return a;
}

// The user vector of a history of item rows (most recent last); empty for a right-padded empty history.
inline std::vector<double> reference_user_vector(const TinySasRec& model, const std::vector<std::size_t>& history) {
  const auto& o = model.options;
  const SasRecSpec& spec = o.spec;
  const std::size_t window = o.max_length, d = o.hidden, heads = o.heads, dh = d / heads;
  const bool right = spec.padding_side == reclite::fbs::PaddingSide::right;
  std::vector<std::size_t> recent(history.size() > window ? history.end() - static_cast<std::ptrdiff_t>(window) : history.begin(),
                                  history.end());
  if (right && recent.empty()) return {};
  std::vector<std::size_t> rows;
  if (right) {
    rows = recent;
    rows.resize(window, 0);
  } else {
    rows.assign(window - recent.size(), 0);
    rows.insert(rows.end(), recent.begin(), recent.end());
  }
  const std::size_t read = right ? recent.size() - 1 : window - 1;
  std::vector<bool> valid(window);
  for (std::size_t t = 0; t < window; ++t) valid[t] = rows[t] != 0;
  const float scale = spec.scale_embeddings ? std::sqrt(static_cast<float>(d)) : 1.0f;
  Matrix x(window, std::vector<double>(d));
  for (std::size_t t = 0; t < window; ++t) {
    std::size_t position = t + spec.position_offset;
    if (spec.pads_use_position_zero && !valid[t]) position = 0;
    for (std::size_t c = 0; c < d; ++c)
      x[t][c] = static_cast<double>(model.tensor("item_embedding.weight")[rows[t] * d + c]) * scale +
                model.tensor("position_embedding.weight")[position * d + c];
  }
  if (spec.embedding_norm) x = reference_layer_norm(model, x, "embedding_norm");
  auto zero_pads = [&](Matrix& m) {
    if (!spec.zero_padding_rows) return;
    for (std::size_t t = 0; t < window; ++t)
      if (!valid[t]) std::fill(m[t].begin(), m[t].end(), 0.0);
  };
  zero_pads(x);
  auto attention = [&](std::size_t l, const Matrix& queries, const Matrix& keys) {
    auto name = [&](const std::string& part) { return sasrec_layer_tensor(l, part); };
    Matrix q = reference_linear(model, queries, name("query.weight"), name("query.bias"));
    Matrix k = reference_linear(model, keys, name("key.weight"), name("key.bias"));
    Matrix v = reference_linear(model, keys, name("value.weight"), name("value.bias"));
    Matrix context(window, std::vector<double>(d, 0.0));
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < window; ++i) {
        std::vector<double> logits(window);
        double largest = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < window; ++j) {
          double s = 0;
          for (std::size_t c = h * dh; c < (h + 1) * dh; ++c) s += q[i][c] * k[j][c];
          s /= std::sqrt(static_cast<double>(dh));
          const bool allowed = j <= i && (!spec.mask_padding_keys || valid[j]);
          if (!allowed) s = std::isinf(spec.mask_value) ? -std::numeric_limits<double>::infinity() : s + spec.mask_value;
          logits[j] = s;
          largest = std::max(largest, s);
        }
        double sum = 0;
        for (auto& s : logits) sum += (s = std::exp(s - largest));
        for (std::size_t j = 0; j < window; ++j)
          for (std::size_t c = h * dh; c < (h + 1) * dh; ++c) context[i][c] += logits[j] / sum * v[j][c];
      }
    if (!model.has(name("output.weight"))) return context;
    return reference_linear(model, context, name("output.weight"), name("output.bias"));
  };
  auto feed_forward = [&](std::size_t l, const Matrix& input) {
    Matrix hidden = reference_linear(model, input, sasrec_layer_tensor(l, "inner.weight"), sasrec_layer_tensor(l, "inner.bias"));
    for (auto& row : hidden)
      for (auto& value : row)
        value = spec.activation == reclite::fbs::Activation::relu ? std::max(value, 0.0)
                                                                  : value * 0.5 * (1.0 + std::erf(value / std::sqrt(2.0)));
    return reference_linear(model, hidden, sasrec_layer_tensor(l, "outer.weight"), sasrec_layer_tensor(l, "outer.bias"));
  };
  for (std::size_t l = 0; l < o.layers; ++l) {
    const std::string attention_norm = sasrec_layer_tensor(l, "attention_norm");
    const std::string feed_forward_norm = sasrec_layer_tensor(l, "feed_forward_norm");
    switch (spec.block_style) {
      case reclite::fbs::SasRecBlockStyle::post_norm: {
        Matrix a = reference_layer_norm(model, reference_add(x, attention(l, x, x)), attention_norm);
        x = reference_layer_norm(model, reference_add(a, feed_forward(l, a)), feed_forward_norm);
        break;
      }
      case reclite::fbs::SasRecBlockStyle::query_norm: {
        Matrix q = reference_layer_norm(model, x, attention_norm);
        Matrix z = reference_layer_norm(model, reference_add(q, attention(l, q, x)), feed_forward_norm);
        x = reference_add(feed_forward(l, z), z);
        break;
      }
      case reclite::fbs::SasRecBlockStyle::pre_norm: {
        Matrix y = reference_layer_norm(model, x, attention_norm);
        x = reference_add(x, attention(l, y, y));
        x = reference_add(x, feed_forward(l, reference_layer_norm(model, x, feed_forward_norm)));
        break;
      }
    }
    zero_pads(x);
  }
  if (spec.final_norm) x = reference_layer_norm(model, x, "final_norm");
  return x[read];
}

}  // namespace test
