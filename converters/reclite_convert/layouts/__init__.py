"""Checkpoint layouts: one module per library, each mapping its state_dict keys onto our reference modules."""

from reclite_convert.layouts import reclite, torch_rechub

LAYOUTS = {"reclite": reclite, "torch_rechub": torch_rechub}

__all__ = ["LAYOUTS"]
