"""Point-in-time, scale-invariant features of the canonical prices frame.

Public interface:

- :class:`FeatureDef`, :data:`FEATURES`, :func:`feature_names`: the feature registry
  (name, group, description, window in trading days, formula source).
- :func:`compute_symbol_features`: technical features of one symbol (pure).
- :func:`build_features`: the canonical features frame of many symbols, with
  cross-sectional percentile ranks ``<name>_rank``.
"""

from vfr.features.cross_section import add_ranks, build_features, build_symbol_features
from vfr.features.definitions import FEATURES, GROUPS, FeatureDef, feature_names
from vfr.features.technical import compute_symbol_features

__all__ = ["FEATURES", "GROUPS", "FeatureDef", "add_ranks", "build_features", "build_symbol_features", "compute_symbol_features",
           "feature_names"]
