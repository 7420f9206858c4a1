"""Shared by the layouts: reading weight files and checking keys and shapes against the module to fill."""

import os
from typing import Dict, Mapping

import numpy as np
import torch

from reclite_convert.errors import ConversionError

# BatchNorm's step counter carries no inference meaning, so a file may have it or not.
OPTIONAL_SUFFIXES = (".num_batches_tracked",)


def load_weights(path: str) -> Dict[str, np.ndarray]:
    """A state_dict from a .pt/.pth file (torch.save of a state_dict or module) or a .npz with the same keys."""
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such weights file")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    try:
        loaded = torch.load(path, map_location="cpu")
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise ConversionError(f"{path}: cannot read as a PyTorch checkpoint: {error}") from error
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if not isinstance(loaded, Mapping):
        raise ConversionError(f"{path}: expected a state_dict (a mapping of names to tensors), got "
                              f"{type(loaded).__name__}")
    return state_dict_to_numpy(loaded, path)


def state_dict_to_numpy(state: Mapping, source: str = "state_dict") -> Dict[str, np.ndarray]:
    weights = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            weights[key] = value.detach().cpu().numpy()
        elif isinstance(value, np.ndarray):
            weights[key] = value
        else:
            raise ConversionError(f"{source}: key '{key}' holds a {type(value).__name__}, not a tensor")
    return weights


def layer_count(weights: Mapping[str, np.ndarray], pattern: str) -> int:
    """Number of consecutive layers i = 0, 1, ... whose key pattern.format(i) exists."""
    count = 0
    while pattern.format(count) in weights:
        count += 1
    return count


def infer_widths(spec: Dict, weights: Mapping[str, np.ndarray], patterns: Mapping[str, str]) -> None:
    """Towers whose spec gives no widths take them from the weights: the rows of each layer's weight.

    patterns maps a tower's spec key to the key of its layer i's Linear weight, with {} for i.
    """
    for tower, pattern in patterns.items():
        entry = spec.setdefault(tower, {})
        if isinstance(entry, dict) and "widths" not in entry:
            entry["widths"] = [int(np.shape(weights[pattern.format(i)])[0])
                               for i in range(layer_count(weights, pattern))]


def fill_module(module: torch.nn.Module, weights: Mapping[str, np.ndarray], source_key: Mapping[str, str],
                source: str) -> None:
    """Copy weights (already renamed to the module's keys) into module, failing by the source's key names.

    source_key maps each of the module's keys to the name it has in the source file, for messages.
    """
    expected = module.state_dict()
    for key in expected:
        if key not in weights and not key.endswith(OPTIONAL_SUFFIXES):
            raise ConversionError(f"{source}: missing key '{source_key.get(key, key)}'")
    for key in weights:
        if key not in expected:
            raise ConversionError(f"{source}: unexpected key '{source_key.get(key, key)}'")
    state = {}
    for key, target in expected.items():
        if key not in weights:
            state[key] = target
            continue
        value = np.asarray(weights[key])
        if tuple(value.shape) != tuple(target.shape):
            raise ConversionError(f"{source}: key '{source_key.get(key, key)}': expected shape "
                                  f"{list(target.shape)}, got {list(value.shape)}")
        if target.dtype.is_floating_point:
            if value.dtype.kind != "f":
                raise ConversionError(f"{source}: key '{source_key.get(key, key)}': expected floating point "
                                      f"values, got {value.dtype}")
            state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        else:
            state[key] = torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype)
    module.load_state_dict(state, strict=True)
    module.eval()


def dense_last(fields):
    """torch-rechub concatenates sparse and sequence features in list order, then the dense values."""
    return [f for f in fields if f.get("kind") != "dense"] + [f for f in fields if f.get("kind") == "dense"]

