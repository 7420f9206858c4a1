"""reclite_convert: turns PyTorch recommender weights into one reclite model file (schemas/model.fbs)."""

import os
import sys

__version__ = "0.1.0"

# The FlatBuffers Python code generated from schemas/model.fbs is checked in beside this package and
# imported as `reclite.fbs`; it is never edited by hand.
_GENERATED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "generated")
if _GENERATED not in sys.path:
    sys.path.insert(0, _GENERATED)

from reclite_convert.errors import ConversionError  # noqa: E402

__all__ = ["ConversionError", "__version__"]
