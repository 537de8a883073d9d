"""Point-in-time, scale-invariant features of the canonical prices frame.

Public interface:

- :class:`FeatureDef`, :data:`FEATURES`, :func:`feature_names`: the feature registry
  (name, group, description, window in trading days, formula source).
- :func:`compute_symbol_features`: technical features of one symbol (pure).
- :func:`build_features`: the canonical features frame of many symbols, with
  cross-sectional percentile ranks ``<name>_rank``.
"""

from vfr.features.alternative import alternative_features
from vfr.features.builder import build_all_features
from vfr.features.catalogue import ALL_FEATURES
from vfr.features.cross_section import build_features
from vfr.features.definitions import FEATURES, GROUPS, SENTIMENT_FEATURES, FeatureDef, feature_names
from vfr.features.fundamental import fundamental_features
from vfr.features.interactions import interaction_features
from vfr.features.macro import macro_features
from vfr.features.technical import compute_symbol_features

__all__ = ["FEATURES", "GROUPS", "FeatureDef", "build_features", "compute_symbol_features", "feature_names"]
__all__ += ["SENTIMENT_FEATURES"]  # sentiment group (issue 3)
# fundamental, macro, alternative and interaction groups (issue 3)
__all__ += ["ALL_FEATURES", "alternative_features", "build_all_features",
            "fundamental_features", "interaction_features", "macro_features"]
