"""Feature store: offline point-in-time values with versions and lineage, an online store of
the latest vector per symbol, and validation with a quality score.

Public interface:

- :class:`FeatureView`, :class:`FeatureSpec`: definitions (versioned in the offline store).
- :class:`OfflineFeatureStore`: ``register``, ``write`` (validated, with lineage),
  ``get_historical_features`` (as-of join on ``known_at``), ``definitions``, ``lineage``.
- :class:`OnlineFeatureStore`: Redis (or process memory) with a 15-minute TTL.
- :func:`validate_vectors`, :class:`ValidationConfig`: the checks and the quality score.
- :func:`materialize`: latest point-in-time vectors into the online store.

Design notes and the comparison with Feast: ``docs/feature_store.md``.
"""

from vfr.featurestore.offline import (
    FeatureView,
    OfflineFeatureStore,
    WriteReport,
    close_timestamp,
    code_version,
    data_fingerprint,
)
from vfr.featurestore.online import DEFAULT_TTL_S, OnlineFeatureStore
from vfr.featurestore.validation import (
    QUALITY_WEIGHTS,
    FeatureSpec,
    FeatureValidationError,
    ValidationConfig,
    ValidationResult,
    validate_vectors,
)


def materialize(offline: OfflineFeatureStore, online: OnlineFeatureStore, view: str,
                symbols: list[str], as_of: object) -> int:
    """Copy the point-in-time vectors of ``symbols`` at ``as_of`` into the online store.

    Parameters
    ----------
    offline, online : the two stores.
    view : str
        Registered view.
    symbols : list of str
        Entities to materialize.
    as_of : timestamp-like
        Time (tz-naive UTC) of the point-in-time lookup (e.g. now).

    Returns
    -------
    int
        Vectors stored (symbols without a value known at ``as_of`` are skipped).
    """
    import pandas as pd

    rows = pd.DataFrame({"symbol": symbols, "event_timestamp": pd.Timestamp(as_of)})
    got = offline.get_historical_features(rows, view)
    got = got[got["known_at"].notna()]
    return online.put_frame(view, got.drop(columns=["event_timestamp"]))


__all__ = ["DEFAULT_TTL_S", "QUALITY_WEIGHTS", "FeatureSpec", "FeatureValidationError",
           "FeatureView", "OfflineFeatureStore", "OnlineFeatureStore", "ValidationConfig",
           "ValidationResult", "WriteReport", "close_timestamp", "code_version",
           "data_fingerprint", "materialize", "validate_vectors"]
