"""Our own modules' state_dict (reclite_convert.modules): keys are used as they are.

  embeddings.<table>.weight                         [vocabulary_size, embedding_dim]
  linear.<table>.weight, bias                       FMTwoTower first-order weights [V, 1] and bias [1]
  <user_tower|item_tower>.layers.<i>.linear.{weight,bias}
  <user_tower|item_tower>.layers.<i>.batch_norm.{weight,bias,running_mean,running_var[,num_batches_tracked]}
"""

import copy
from typing import Any, Dict, Mapping

import numpy as np

from reclite_convert.layouts.common import fill_module, infer_widths
from reclite_convert.spec import SpecDefaults, module_from_spec

NAME = "reclite"


def defaults() -> SpecDefaults:
    return SpecDefaults()


def build_module(architecture: str, spec: Dict[str, Any], weights: Mapping[str, np.ndarray], source: str):
    """Our reference module for `architecture`, filled with `weights`, in eval mode."""
    spec = copy.deepcopy(spec)
    towers = {"dssm": ("user_tower", "item_tower"), "youtube_dnn": ("user_tower",)}.get(architecture, ())
    infer_widths(spec, weights, {tower: tower + ".layers.{}.linear.weight" for tower in towers})
    module = module_from_spec(architecture, spec, defaults())
    fill_module(module, weights, {}, source)
    return module
