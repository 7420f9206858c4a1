"""Small models and helpers shared by the converter tests."""

import numpy as np
import torch

from reclite_convert.catalogue import Catalogue
from reclite_convert.modules import (DSSM, CategoricalFeature, DenseFeature, FMTwoTower, HistoryFeature,
                                     TowerOptions, YoutubeDNN)

ITEMS = 60


def randomize_batch_norm(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.BatchNorm1d):
                sub.weight.uniform_(0.5, 1.5, generator=generator)
                sub.bias.normal_(0.0, 0.2, generator=generator)
                sub.running_mean.normal_(0.0, 0.3, generator=generator)
                sub.running_var.uniform_(0.3, 2.0, generator=generator)
    module.eval()
    return module


def small_dssm(batch_norm=True, seed=0):
    torch.manual_seed(seed)
    module = DSSM([CategoricalFeature("user_id", 10, 8), HistoryFeature("history", 6, "item_id"),
                   DenseFeature("activity", 2)],
                  [CategoricalFeature("item_id", ITEMS, 8, ids="item"), CategoricalFeature("category", 5, 4)],
                  TowerOptions([16, 8], batch_norm=batch_norm), TowerOptions([16, 8], activation="tanh"))
    return randomize_batch_norm(module, seed)


def small_youtube_dnn(seed=0):
    torch.manual_seed(seed)
    module = YoutubeDNN([CategoricalFeature("user_id", 10, 8),
                         HistoryFeature("history", 6, "item_id", pooling="mean_over_window")],
                        CategoricalFeature("item_id", ITEMS, 8, ids="item"),
                        TowerOptions([16, 8], activation="gelu"), temperature=0.5)
    return module.eval()


def small_fm(seed=0):
    torch.manual_seed(seed)
    return FMTwoTower([CategoricalFeature("user_id", 10, 4), CategoricalFeature("gender", 3, 4)],
                      [CategoricalFeature("item_id", ITEMS, 4, ids="item"), CategoricalFeature("category", 5, 4)],
                      4).eval()


def catalogue(seed=0):
    rng = np.random.default_rng(seed)
    rows = np.arange(1, ITEMS)
    return Catalogue(ITEMS, external_ids=5000 - 3 * rows, item_rows=rows,
                     item_features={"category": rng.integers(0, 5, size=ITEMS)})
