"""pmixer/SASRec.pytorch state_dicts (models.md §1.1 (C), §1.2; python/model.py at three code generations).

Keys, per block l (torch-rechub's SASRec uses the same block keys, see torch_rechub.py):

  item_emb.weight                                   [item_num + 1, d] (row 0 = padding)
  pos_emb.weight                                    V1: [maxlen, d]; V2/V3: [maxlen + 1, d], row 0 = padding (zero)
  attention_layernorms.{l}.weight / .bias           LN_attention (eps 1e-8)
  attention_layers.{l}.in_proj_weight / _bias       nn.MultiheadAttention [3d, d] / [3d]: rows [W_q; W_k; W_v]
  attention_layers.{l}.out_proj.weight / .bias      the output projection [d, d] / [d]
  forward_layernorms.{l}.weight / .bias             LN_feed_forward
  forward_layers.{l}.conv1.weight / .bias           Conv1d(d, d, 1): weight [out, in, 1], stored as [out, in]
  forward_layers.{l}.conv2.weight / .bias
  last_layernorm.weight / .bias                     the final LayerNorm

The code generation cannot be read from the tensors (V3's --norm_first is not even saved), so `--variant` is
required: v1, v2, v3 (post-LN, the V3 default) or v3_pre_norm. The pos_emb rows must match it (maxlen for V1,
maxlen + 1 for V2/V3), and V2/V3 keep pos_emb row 0 at zero (padding_idx 0): a mismatch fails, naming the key.
Defaults: 1 head, eps 1e-8, ReLU; max length from pos_emb (or --max-length, then checked).
"""

import re
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from reclite_convert.errors import ConversionError
from reclite_convert.modules.sasrec import SASRec, SasRecOptions, build_from_weights

NAME = "pmixer"
VARIANTS = ("v1", "v2", "v3", "v3_pre_norm")

_BLOCK = re.compile(r"^(attention_layernorms|attention_layers|forward_layernorms|forward_layers)\.(\d+)\.(.+)$")
_NORMS = {"attention_layernorms": "attention_norm", "forward_layernorms": "feed_forward_norm"}
_PROJECTIONS = ("query", "key", "value")


def _matrix(value: np.ndarray, key: str, source: str, rows_multiple: int = 1) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2 or value.shape[0] % rows_multiple:
        raise ConversionError(f"{source}: key '{key}': expected shape [{rows_multiple} * d, d], got "
                              f"{list(value.shape)}")
    return value


def rename_block(key: str, value: np.ndarray, source: str) -> Optional[Dict[str, Tuple[np.ndarray, str]]]:
    """Our keys (with values and the source key) for one transformer-block key; None if not a block key."""
    match = _BLOCK.match(key)
    if not match:
        return None
    group, layer, rest = match.group(1), match.group(2), match.group(3)
    prefix = f"layers.{layer}"
    if group in _NORMS and rest in ("weight", "bias"):
        return {f"{prefix}.{_NORMS[group]}.{rest}": (value, key)}
    if group == "attention_layers":
        if rest == "in_proj_weight":
            parts = np.split(_matrix(value, key, source, 3), 3, axis=0)
            return {f"{prefix}.{name}.weight": (part, key) for name, part in zip(_PROJECTIONS, parts)}
        if rest == "in_proj_bias":
            value = np.asarray(value)
            if value.ndim != 1 or value.shape[0] % 3:
                raise ConversionError(f"{source}: key '{key}': expected shape [3 * d], got {list(value.shape)}")
            return {f"{prefix}.{name}.bias": (part, key) for name, part in zip(_PROJECTIONS, np.split(value, 3))}
        if rest in ("out_proj.weight", "out_proj.bias"):
            return {f"{prefix}.output.{rest.split('.')[1]}": (value, key)}
    if group == "forward_layers":
        conv = re.match(r"^conv([12])\.(weight|bias)$", rest)
        if conv:
            target = f"{prefix}.{'inner' if conv.group(1) == '1' else 'outer'}.{conv.group(2)}"
            value = np.asarray(value)
            if conv.group(2) == "weight":
                if value.ndim != 3 or value.shape[2] != 1:
                    raise ConversionError(f"{source}: key '{key}': expected a Conv1d weight [out, in, 1], got "
                                          f"{list(value.shape)}")
                value = value[:, :, 0]  # Conv1d with kernel 1 is a Linear [out, in]
            return {target: (np.ascontiguousarray(value), key)}
    return None


def block_key(ours: str) -> str:
    """The pmixer / torch-rechub name of one of our block or final-norm keys (for messages)."""
    match = re.match(r"^layers\.(\d+)\.(\w+)\.(weight|bias)$", ours)
    if match:
        layer, part, parameter = match.groups()
        if part in _PROJECTIONS:
            return f"attention_layers.{layer}.in_proj_{parameter}"
        if part == "output":
            return f"attention_layers.{layer}.out_proj.{parameter}"
        if part in ("inner", "outer"):
            return f"forward_layers.{layer}.conv{1 if part == 'inner' else 2}.{parameter}"
        group = next(k for k, v in _NORMS.items() if v == part)
        return f"{group}.{layer}.{parameter}"
    match = re.match(r"^final_norm\.(weight|bias)$", ours)
    if match:
        return f"last_layernorm.{match.group(1)}"
    return ours


def rename(weights: Mapping[str, np.ndarray], top: Mapping[str, str], source: str,
           ignore: Callable[[str], bool] = lambda key: False):
    """(weights under our keys, our key -> source key); `top` maps non-block source keys to ours."""
    renamed, source_key = {}, {}
    for key, value in weights.items():
        if ignore(key):
            continue
        if key in top:
            mapped = {top[key]: (value, key)}
        elif key in ("last_layernorm.weight", "last_layernorm.bias"):
            mapped = {f"final_norm.{key.split('.')[1]}": (value, key)}
        else:
            mapped = rename_block(key, value, source)
        if mapped is None:
            raise ConversionError(f"{source}: unexpected key '{key}'")
        for ours, (array, their) in mapped.items():
            renamed[ours] = array
            source_key[ours] = their
    return renamed, source_key


def variant_name(variant: Optional[str]) -> str:
    if variant is None:
        raise ConversionError("option --variant: required for layout pmixer (v1, v2, v3 or v3_pre_norm): a "
                              "SASRec.pytorch checkpoint does not tell which code generation wrote it")
    short = variant[len("pmixer_"):] if variant.startswith("pmixer_") else variant
    if short not in VARIANTS:
        raise ConversionError(f"option --variant: layout pmixer has variants {', '.join(VARIANTS)}, got '{variant}'")
    return f"pmixer_{short}"


_TOP = {"item_emb.weight": "item_embedding.weight", "pos_emb.weight": "position_embedding.weight"}


def build_sasrec(weights: Mapping[str, np.ndarray], options: SasRecOptions, source: str) -> SASRec:
    """Our SASRec equal to pmixer's SASRec of the given code generation with these weights, in eval mode."""
    variant = variant_name(options.variant)
    renamed, source_key = rename(weights, _TOP, source)
    if variant != "pmixer_v1" and "position_embedding.weight" in renamed:
        positions = np.asarray(renamed["position_embedding.weight"])
        if positions.ndim == 2 and positions.shape[0] and np.any(positions[0] != 0):
            raise ConversionError(f"{source}: key 'pos_emb.weight': row 0 is not zero, but {variant} keeps it zero "
                                  f"(padding_idx 0, positions start at 1); is this a V1 checkpoint (--variant v1)?")

    def their_key(ours: str) -> str:
        return next((k for k, v in _TOP.items() if v == ours), None) or block_key(ours)

    return build_from_weights(renamed, variant, options, source, source_key, their_key=their_key)
