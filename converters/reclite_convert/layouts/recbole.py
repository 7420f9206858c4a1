"""RecBole SASRec checkpoints (models.md §1.1 (A), §1.2; recbole/model/sequential_recommender/sasrec.py).

RecBole saves `torch.save({'config': Config, 'epoch': ..., 'state_dict': model.state_dict(), ...})`; a bare
state_dict is accepted too. Keys, per layer l:

  item_embedding.weight                                          [n_items, d] (row 0 = padding, real and random)
  position_embedding.weight                                      [MAX_ITEM_LIST_LENGTH, d]
  LayerNorm.weight / .bias                                       embedding LayerNorm
  trm_encoder.layer.{l}.multi_head_attention.{query,key,value,dense}.weight / .bias   [d, d] / [d]
  trm_encoder.layer.{l}.multi_head_attention.LayerNorm.weight / .bias
  trm_encoder.layer.{l}.feed_forward.dense_1.weight / .bias      [inner, d] / [inner]
  trm_encoder.layer.{l}.feed_forward.dense_2.weight / .bias      [d, inner] / [d]
  trm_encoder.layer.{l}.feed_forward.LayerNorm.weight / .bias

What the tensors cannot tell comes from the saved config when present (n_heads, hidden_act, layer_norm_eps,
MAX_ITEM_LIST_LENGTH), else RecBole's defaults (2 heads, gelu (erf), 1e-12); command-line options override both.
"""

import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from reclite_convert.errors import ConversionError
from reclite_convert.layouts.common import state_dict_to_numpy
from reclite_convert.modules.sasrec import SASRec, SasRecOptions, build_from_weights

NAME = "recbole"
VARIANTS = ("recbole",)

_LAYER = re.compile(r"^trm_encoder\.layer\.(\d+)\.(.+)$")
_LAYER_PARTS = {
    "multi_head_attention.query": "query", "multi_head_attention.key": "key", "multi_head_attention.value": "value",
    "multi_head_attention.dense": "output", "multi_head_attention.LayerNorm": "attention_norm",
    "feed_forward.dense_1": "inner", "feed_forward.dense_2": "outer", "feed_forward.LayerNorm": "feed_forward_norm",
}
_TOP = {"item_embedding.weight": "item_embedding.weight", "position_embedding.weight": "position_embedding.weight",
        "LayerNorm.weight": "embedding_norm.weight", "LayerNorm.bias": "embedding_norm.bias"}
# RecBole's hidden_act names -> ours (swish has no schema Activation: it fails by name)
_ACTIVATIONS = {"gelu": "gelu_erf", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}
_CONFIG_KEYS = ("n_heads", "hidden_act", "layer_norm_eps", "MAX_ITEM_LIST_LENGTH")


def load_checkpoint(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """(state_dict as numpy, the saved config's SASRec settings) from a RecBole checkpoint or a bare state_dict."""
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such weights file")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}, {}
    try:
        loaded = torch.load(path, map_location="cpu")
    except ModuleNotFoundError as error:
        raise ConversionError(f"{path}: the checkpoint pickles a class of a package that is not installed "
                              f"({error.name}); re-save it as torch.save({{'state_dict': checkpoint['state_dict'], "
                              f"'config': {{...}}}}) with a plain dict config") from error
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise ConversionError(f"{path}: cannot read as a PyTorch checkpoint: {error}") from error
    return split_checkpoint(loaded, path)


def split_checkpoint(loaded: Any, source: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if not isinstance(loaded, Mapping):
        raise ConversionError(f"{source}: expected a RecBole checkpoint dict or a state_dict, got "
                              f"{type(loaded).__name__}")
    config: Dict[str, Any] = {}
    if "state_dict" in loaded:
        config = read_config(loaded.get("config"), source)
        loaded = loaded["state_dict"]
        if not isinstance(loaded, Mapping):
            raise ConversionError(f"{source}: 'state_dict' holds a {type(loaded).__name__}, not a state_dict")
    return state_dict_to_numpy(loaded, source), config


def read_config(config: Any, source: str) -> Dict[str, Any]:
    """The settings of a RecBole Config (or a plain dict) that the tensors cannot tell."""
    if config is None:
        return {}
    if hasattr(config, "final_config_dict"):
        config = config.final_config_dict
    found = {}
    for key in _CONFIG_KEYS:
        try:
            value = config[key]
        except (KeyError, TypeError, IndexError):
            continue
        if value is not None:
            found[key] = value
    return found


def rename(weights: Mapping[str, np.ndarray], source: str):
    """(weights under our keys, our key -> RecBole key); an unknown key fails by name."""
    renamed, source_key = {}, {}
    for key, value in weights.items():
        ours = _TOP.get(key)
        match = _LAYER.match(key)
        if ours is None and match:
            part, _, parameter = match.group(2).rpartition(".")
            if part in _LAYER_PARTS and parameter in ("weight", "bias"):
                ours = f"layers.{match.group(1)}.{_LAYER_PARTS[part]}.{parameter}"
        if ours is None:
            raise ConversionError(f"{source}: unexpected key '{key}'")
        renamed[ours] = value
        source_key[ours] = key
    return renamed, source_key


def their_key(ours: str) -> str:
    match = re.match(r"^layers\.(\d+)\.(\w+)\.(weight|bias)$", ours)
    if match:
        part = next(k for k, v in _LAYER_PARTS.items() if v == match.group(2))
        return f"trm_encoder.layer.{match.group(1)}.{part}.{match.group(3)}"
    return next((k for k, v in _TOP.items() if v == ours), ours)


def resolve_options(options: SasRecOptions, saved: Mapping[str, Any], source: str) -> SasRecOptions:
    """Options over the saved config over RecBole's defaults; the variant is always 'recbole'."""
    if options.variant not in (None, "recbole"):
        raise ConversionError(f"option --variant: layout recbole has only the variant 'recbole', got "
                              f"'{options.variant}'")
    activation = options.activation
    if activation is None and "hidden_act" in saved:
        if saved["hidden_act"] not in _ACTIVATIONS:
            raise ConversionError(f"{source}: config hidden_act '{saved['hidden_act']}' has no reclite activation "
                                  f"(supported: {', '.join(_ACTIVATIONS)})")
        activation = _ACTIVATIONS[saved["hidden_act"]]
    elif activation is not None:
        activation = _ACTIVATIONS.get(activation, activation)
    heads = options.heads if options.heads is not None else saved.get("n_heads")
    epsilon = options.layer_norm_epsilon if options.layer_norm_epsilon is not None else saved.get("layer_norm_eps")
    max_length = options.max_length if options.max_length is not None else saved.get("MAX_ITEM_LIST_LENGTH")
    return SasRecOptions(variant="recbole", heads=None if heads is None else int(heads),
                         layer_norm_epsilon=None if epsilon is None else float(epsilon), activation=activation,
                         max_length=None if max_length is None else int(max_length),
                         history_field=options.history_field, padding_row=options.padding_row)


def build_sasrec(weights: Mapping[str, np.ndarray], options: SasRecOptions, source: str,
                 saved_config: Optional[Mapping[str, Any]] = None) -> SASRec:
    """Our SASRec (variant recbole) equal to RecBole's SASRec with these weights, in eval mode."""
    resolved = resolve_options(options, saved_config or {}, source)
    renamed, source_key = rename(weights, source)
    return build_from_weights(renamed, "recbole", resolved, source, source_key, their_key=their_key)
