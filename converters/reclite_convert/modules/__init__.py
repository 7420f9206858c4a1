"""PyTorch reference modules: what a team trains, and the ground truth the C++ engine is tested against."""

from reclite_convert.modules.features import CategoricalFeature, DenseFeature, HistoryFeature
from reclite_convert.modules.two_tower import DSSM, FMTwoTower, TowerOptions, YoutubeDNN

__all__ = ["CategoricalFeature", "DenseFeature", "HistoryFeature", "DSSM", "FMTwoTower", "TowerOptions",
           "YoutubeDNN"]
