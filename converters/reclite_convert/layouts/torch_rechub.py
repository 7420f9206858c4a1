"""torch-rechub DSSM and YoutubeDNN state_dicts (models.md §4-§5; torch_rechub/models/matching, basic/layers.py).

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
