"""Scoring: classic five-factor scores, the ML blend, recommendations and selection.

Public interface::

    classic_scores(features) -> frame with <group>_score and classic_score on [0, 1]
    blend(classic, ml_score, ml_confidence, ml_weight=0.15) -> composite
    select(features, date=..., include_ml=..., model=...) -> Selection
    neutralize(frame, score, exposures, sector=) -> residual rank (vs volatility, beta, sector)
    risk_neutral_score(frame, score) -> the same against RISK_EXPOSURES' ranks and sector
    risk_neutral_scores(scores, features, sectors) -> the same, exposures looked up in the features
"""

from vfr.scoring.classic import (
    GROUP_SIGNALS,
    GROUP_WEIGHTS,
    RECOMMENDATIONS,
    SEED_GROUP_SIGNALS,
    TECHNICAL_SIGNALS,
    Signal,
    blend,
    classic_scores,
    group_score,
    ml_components,
    ml_confidence,
    recommendation,
)
from vfr.scoring.neutralize import RISK_EXPOSURES, neutralize, risk_neutral_score, risk_neutral_scores
from vfr.scoring.select import Selection, select

__all__ = [
    "GROUP_SIGNALS", "GROUP_WEIGHTS", "RECOMMENDATIONS", "RISK_EXPOSURES", "SEED_GROUP_SIGNALS", "Selection", "Signal",
    "TECHNICAL_SIGNALS", "blend",
    "classic_scores", "group_score", "ml_components", "ml_confidence", "neutralize", "recommendation",
    "risk_neutral_score",
    "risk_neutral_scores", "select",
]
