"""torch-rechub state_dicts: DSSM and YoutubeDNN (models.md §4-§5), SASRec and MIND (at the end of this file).

  embedding.embed_dict.<feature>.weight          [vocab_size, embed_dim]; shared features have no own table
  <user|item>_mlp.mlp.<4i>.{weight,bias}          Linear i, [out, in]
  <user|item>_mlp.mlp.<4i+1>.{weight,bias,running_mean,running_var,num_batches_tracked}   BatchNorm1d i
  (mlp.<4i+2> is the activation, mlp.<4i+3> Dropout: no weights unless the activation is PReLU)

What tensors cannot tell comes from the spec, with torch-rechub's defaults: every layer, the last included, is
Linear -> BatchNorm1d(eps 1e-5) -> ReLU; the output is F.normalize'd; YoutubeDNN items are F.normalize(E);
temperature only scales training scores, so it stays 1; a SequenceFeature without padding_idx averages the whole
padded window (pooling 'mean_over_window'), with padding_idx it is a masked mean with epsilon 1e-16.
The tower input is the sparse and sequence features in list order, then the dense values, so dense fields are
moved last whatever their place in the spec.
"""

import copy
import re
from typing import Any, Dict, Mapping

import numpy as np

from reclite_convert.errors import ConversionError
from reclite_convert.layouts.common import dense_last, fill_module
from reclite_convert.spec import SpecDefaults, module_from_spec

NAME = "torch_rechub"
_MLP_KEY = re.compile(r"^(user|item)_mlp\.mlp\.(\d+)\.(\w+)$")
_EMBEDDING_KEY = re.compile(r"^embedding\.embed_dict\.([^.]+)\.weight$")
_BATCH_NORM_PARAMETERS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def defaults() -> SpecDefaults:
    return SpecDefaults(
        tower={"widths": [], "activation": "relu", "last_activation": "relu", "batch_norm": True,
               "batch_norm_eps": 1e-5},
        history={"pooling": "mean_over_window", "padding_id": 0, "mean_epsilon": 1e-16, "ids": "item"},
        l2_normalize=True, normalize_items=True, temperature=1.0)


def rename(weights: Mapping[str, np.ndarray], architecture: str, source: str):
    """(weights under our keys, our key -> torch-rechub key) ; unknown keys fail by name."""
    renamed, source_key = {}, {}
    sides = {"user": "user_tower", "item": "item_tower"} if architecture == "dssm" else {"user": "user_tower"}
    for key, value in weights.items():
        ours = None
        embedding = _EMBEDDING_KEY.match(key)
        mlp = _MLP_KEY.match(key)
        if embedding:
            ours = f"embeddings.{embedding.group(1)}.weight"
        elif mlp and mlp.group(1) in sides:
            index, part, parameter = int(mlp.group(2)) // 4, int(mlp.group(2)) % 4, mlp.group(3)
            tower = sides[mlp.group(1)]
            if part == 0 and parameter in ("weight", "bias"):
                ours = f"{tower}.layers.{index}.linear.{parameter}"
            elif part == 1 and parameter in _BATCH_NORM_PARAMETERS:
                ours = f"{tower}.layers.{index}.batch_norm.{parameter}"
            elif part == 2:
                raise ConversionError(f"{source}: key '{key}': activations with weights (PReLU) are not supported")
        if ours is None:
            raise ConversionError(f"{source}: unexpected key '{key}'")
        renamed[ours] = value
        source_key[ours] = key
    return renamed, source_key


def their_key(ours: str) -> str:
    """The torch-rechub name of one of our keys, for messages about keys the file lacks."""
    match = re.match(r"^embeddings\.([^.]+)\.weight$", ours)
    if match:
        return f"embedding.embed_dict.{match.group(1)}.weight"
    match = re.match(r"^(user|item)_tower\.layers\.(\d+)\.(linear|batch_norm)\.(\w+)$", ours)
    if match:
        offset = 0 if match.group(3) == "linear" else 1
        return f"{match.group(1)}_mlp.mlp.{4 * int(match.group(2)) + offset}.{match.group(4)}"
    return ours


def build_module(architecture: str, spec: Dict[str, Any], weights: Mapping[str, np.ndarray], source: str):
    """Our reference module equal to torch-rechub's DSSM or YoutubeDNN with these weights, in eval mode."""
    if architecture not in ("dssm", "youtube_dnn"):
        raise ConversionError(f"layout torch_rechub has no '{architecture}' (it offers dssm and youtube_dnn)")
    spec = copy.deepcopy(spec)
    for key in ("user_fields", "item_fields"):
        if isinstance(spec.get(key), list):
            spec[key] = dense_last(spec[key])
    towers = ("user", "item") if architecture == "dssm" else ("user",)
    for side in towers:
        entry = spec.setdefault(f"{side}_tower", {})
        if isinstance(entry, dict) and "widths" not in entry:
            widths, index = [], 0
            while f"{side}_mlp.mlp.{4 * index}.weight" in weights:
                widths.append(int(np.shape(weights[f"{side}_mlp.mlp.{4 * index}.weight"])[0]))
                index += 1
            entry["widths"] = widths
    module = module_from_spec(architecture, spec, defaults())
    renamed, source_key = rename(weights, architecture, source)
    for ours in module.state_dict():
        source_key.setdefault(ours, their_key(ours))
    fill_module(module, renamed, source_key, source)
    return module


# --- SASRec (torch_rechub/models/matching/sasrec.py; models.md §1.1 (C) V1, §1.2) ----------------------------
# Keys: item_emb.embed_dict.<seq feature>.weight [vocab, d] (the history's table; pos/neg features share it),
# position_emb.weight [max_len, d], then pmixer's block keys (attention_layernorms, attention_layers,
# forward_layernorms, forward_layers, last_layernorm). The math is pmixer V1's. Defaults: 1 head, eps 1e-8, ReLU.
_SASREC_TABLE = re.compile(r"^item_emb\.embed_dict\.([^.]+)\.weight$")


def build_sasrec(weights: Mapping[str, np.ndarray], options, source: str):
    """Our SASRec (variant torch_rechub) equal to torch-rechub's SASRec with these weights, in eval mode."""
    from reclite_convert.layouts import pmixer
    from reclite_convert.modules.sasrec import SasRecOptions, build_from_weights

    if options.variant not in (None, "torch_rechub"):
        raise ConversionError(f"option --variant: layout torch_rechub has only the variant 'torch_rechub', got "
                              f"'{options.variant}'")
    tables = [m.group(1) for m in (_SASREC_TABLE.match(k) for k in weights) if m]
    if not tables:
        raise ConversionError(f"{source}: missing key 'item_emb.embed_dict.<sequence feature>.weight'")
    feature = options.history_field
    if feature is None:
        if len(tables) > 1:
            raise ConversionError(f"{source}: several item tables ({', '.join(tables)}): give the history "
                                  f"feature with --history-field")
        feature = tables[0]
    elif feature not in tables:
        raise ConversionError(f"{source}: missing key 'item_emb.embed_dict.{feature}.weight' (option "
                              f"--history-field; tables found: {', '.join(tables)})")
    top = {f"item_emb.embed_dict.{feature}.weight": "item_embedding.weight",
           "position_emb.weight": "position_embedding.weight"}
    renamed, source_key = pmixer.rename(weights, top, source,
                                        ignore=lambda key: bool(_SASREC_TABLE.match(key)) and key not in top)

    def their_key(ours: str) -> str:
        return next((k for k, v in top.items() if v == ours), None) or pmixer.block_key(ours)

    resolved = SasRecOptions(**dict(vars(options), variant="torch_rechub", history_field=feature))
    return build_from_weights(renamed, "torch_rechub", resolved, source, source_key, their_key=their_key)


# --- MIND (torch_rechub/models/matching/mind.py; models.md §2) ----------------------------------------------------
# Keys: embedding.embed_dict.<feature>.weight [vocab, dim] (user features, then the item feature, whose table the
# history shares), capsule.linear.weight [D, D] (bilinear_type 0: ê = e·Wᵀ, no bias), convert_user_weight
# [user_dims, D] (h = l2norm([user embeddings ; c_k] · U), no bias, no activation), capsule.relu.0.weight (only
# with relu_layer=True, which MIND does not use: ignored). Items are l2norm(E). Routing: softmax over behaviours
# including pads, then pads zeroed; all K capsules; squash eps 1e-9; torch.randn logits per call, so the file
# carries a frozen snapshot (options initial_logits, initial_logits_seed, initial_logits_std).
_MIND_TABLE = re.compile(r"^embedding\.embed_dict\.([^.]+)\.weight$")
MIND_IGNORED_KEYS = ("capsule.relu.0.weight",)


def build_mind(weights: Mapping[str, np.ndarray], options: Dict[str, Any], source: str):
    """Our MIND (variant torch_rechub) equal to torch-rechub's MIND with these weights and frozen routing logits.

    options: interests (4), max_length (required: the capsule's seq_len is not in the tensors), item_feature
    (default: the last table), user_features (default: the other tables in file order), history_field (default
    hist_<item feature>), initial_logits / initial_logits_seed / initial_logits_std, and any MIND setting
    (padding_side defaults to left, torch-rechub's pad_sequences 'pre').
    """
    from reclite_convert.modules.mind import MIND, SETTING_NAMES

    options = {k: v for k, v in options.items() if v is not None}
    if options.get("variant", "torch_rechub") != "torch_rechub":
        raise ConversionError(f"option --variant: layout torch_rechub has only the MIND variant 'torch_rechub', got "
                              f"'{options['variant']}'")
    if "max_length" not in options:
        raise ConversionError("option --max-length: required for torch-rechub MIND (the capsule's seq_len is not "
                              "stored in the weights)")
    tables = [m.group(1) for m in (_MIND_TABLE.match(k) for k in weights) if m]
    for key in ("capsule.linear.weight", "convert_user_weight"):
        if key not in weights:
            raise ConversionError(f"{source}: missing key '{key}'")
    if not tables:
        raise ConversionError(f"{source}: missing key 'embedding.embed_dict.<item feature>.weight'")
    item = options.get("item_feature") or tables[-1]
    users = list(options.get("user_features") or [t for t in tables if t != item])
    for feature in [item] + users:
        if feature not in tables:
            raise ConversionError(f"{source}: missing key 'embedding.embed_dict.{feature}.weight'")
    for key in weights:
        table = _MIND_TABLE.match(key)
        known = key in ("capsule.linear.weight", "convert_user_weight") or key in MIND_IGNORED_KEYS or \
            (table and table.group(1) in [item] + users)
        if not known:
            raise ConversionError(f"{source}: unexpected key '{key}'")
    bilinear = np.asarray(weights["capsule.linear.weight"])
    if bilinear.ndim != 2 or bilinear.shape[0] != bilinear.shape[1]:
        raise ConversionError(f"{source}: key 'capsule.linear.weight': expected a square matrix [D, D], got "
                              f"{list(bilinear.shape)} (only bilinear_type 0, MIND's, is supported)")
    hidden = bilinear.shape[0]
    items = np.asarray(weights[f"embedding.embed_dict.{item}.weight"])
    user_fields = [{"kind": "categorical", "name": f,
                    "vocabulary_size": int(np.shape(weights[f"embedding.embed_dict.{f}.weight"])[0]),
                    "embedding_dim": int(np.shape(weights[f"embedding.embed_dict.{f}.weight"])[1])} for f in users]
    user_dims = sum(f["embedding_dim"] for f in user_fields) + hidden
    convert = np.asarray(weights["convert_user_weight"])
    if list(convert.shape) != [user_dims, hidden]:
        raise ConversionError(f"{source}: key 'convert_user_weight': expected shape [{user_dims}, {hidden}] (user "
                              f"features {', '.join(users) or 'none'} then the capsule), got {list(convert.shape)}")
    settings = {k: v for k, v in options.items() if k in SETTING_NAMES}
    settings.setdefault("padding_side", "left")
    initial = options.get("initial_logits", "normal")
    kind = initial if isinstance(initial, str) and not initial.endswith(".npy") else "normal"
    settings["initial_logits"] = kind
    module = MIND(items.shape[0], hidden, interests=int(options.get("interests", 4)),
                  max_length=int(options["max_length"]), variant="torch_rechub", user_fields=user_fields,
                  head_widths=[hidden], head_activation="none", head_last_activation="none", head_bias=False,
                  history_field=options.get("history_field") or f"hist_{item}", item_table=item,
                  padding_row=int(options.get("padding_row", 0)),
                  initial_logits_seed=int(options.get("initial_logits_seed", 0)),
                  initial_logits_std=float(options.get("initial_logits_std", 1.0)), **settings)
    renamed = {f"embeddings.{f}.weight": weights[f"embedding.embed_dict.{f}.weight"] for f in [item] + users}
    renamed["bilinear.weight"] = bilinear
    renamed["head.0.weight"] = np.ascontiguousarray(convert.T)
    renamed["initial_logits"] = initial_logits_array(initial, module)
    source_key = {f"embeddings.{f}.weight": f"embedding.embed_dict.{f}.weight" for f in [item] + users}
    source_key.update({"bilinear.weight": "capsule.linear.weight", "head.0.weight": "convert_user_weight",
                       "initial_logits": "option --initial-logits"})
    fill_module(module, renamed, source_key, source)
    return module


def initial_logits_array(initial, module) -> np.ndarray:
    """The frozen routing logits: a module's own draw (zeros, normal, truncated_normal) or a .npy file/array."""
    if isinstance(initial, str) and initial.endswith(".npy"):
        try:
            array = np.load(initial, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ConversionError(f"{initial}: cannot read as a .npy array: {error}") from error
    elif isinstance(initial, np.ndarray):
        array = initial
    else:
        return module.initial_logits.detach().numpy()
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]  # DeepMatch / fun-rec store B as [1, K, T]
    if list(array.shape) != [module.interests, module.max_length]:
        raise ConversionError(f"option --initial-logits: expected shape [{module.interests}, {module.max_length}] "
                              f"(interests, max_length), got {list(array.shape)}")
    return array
