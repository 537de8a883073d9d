"""The dataset: features joined with one horizon's labels, in (date, symbol) order.

One object serves training, walk-forward, tuning and retraining (the role of Qlib's
``DatasetH``): it holds the keys and labels as a small frame and the features as one float32
matrix, so selecting rows for a segment or a walk-forward window is slicing, not merging.

Rows are sorted by date then symbol; every row of the features frame is kept (rows whose
label is not yet known, the newest ``h`` dates, can still be predicted), and
:attr:`Dataset.known` marks the labelled ones.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vfr.config import HORIZONS
from vfr.errors import StageError
from vfr.metrics import HorizonError, parse_horizon
from vfr.ml.labels import label_columns
from vfr.ml.splits import TimeSplit, time_split

ID_COLUMNS = ("symbol", "date")
#: Training targets :meth:`Dataset.target` can build.
TARGETS = ("direction", "excess", "excess_rank")


@dataclass
class Dataset:
    """Features and labels of one horizon.

    Attributes
    ----------
    keys : DataFrame of shape (n_rows, 5 [+ 1])
        ``date``, ``symbol``, ``fwd_ret_<h>``, ``fwd_excess_<h>``, ``fwd_dir_<h>`` (NaN where
        the label is not known yet) and, when the features have it, ``ret_20d`` (the
        momentum baseline), sorted by date then symbol.
    X : ndarray of shape (n_rows, n_features), float32
        The features of each row of ``keys``, columns in :attr:`feature_columns` order.
    feature_columns : list of str
    horizon : str
        Label horizon name (a key of :data:`vfr.config.HORIZONS`).
    fingerprint : str
        SHA-256 of the labelled rows' dates, symbols, features and label (see
        :func:`fingerprint`): the identity of what a model was trained on.
    """

    keys: pd.DataFrame
    X: np.ndarray
    feature_columns: list[str]
    horizon: str
    fingerprint: str

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_frames(cls, features: pd.DataFrame, labels: pd.DataFrame, horizon: str,
                    feature_columns: list[str] | tuple[str, ...] | None = None) -> Dataset:
        """Join ``features`` with ``labels`` without copying the feature frame twice.

        Parameters
        ----------
        features : DataFrame
            Canonical features frame (``symbol``, ``date``, feature columns); one row per
            (date, symbol).
        labels : DataFrame
            Output of :func:`vfr.ml.make_labels` (one row per (date, symbol)).
        horizon : str
            Which horizon's labels to join.
        feature_columns : sequence of str, optional
            Model inputs in order; default every column of ``features`` except the ids.

        Raises
        ------
        StageError
            If a feature column is missing, the horizon is unknown, or no row has a known label.
        pandas.errors.MergeError
            If a (symbol, date) pair repeats in either frame.
        """
        try:
            horizon = parse_horizon(horizon).name  # "1w", 5 and "5d" are one horizon
        except HorizonError as exc:
            raise StageError(f"dataset: {exc}") from exc
        if horizon not in HORIZONS:
            raise StageError(f"dataset: no labels for horizon {horizon!r}; expected one of {sorted(HORIZONS)}")
        cols = list(feature_columns or [c for c in features.columns if c not in ID_COLUMNS])
        missing = sorted(set(cols) - set(features.columns))
        if missing:
            raise StageError(f"dataset: feature columns not in the features frame: {missing}")
        order, keys = dataset_order(features, labels, horizon)
        if order is None:  # pragma: no cover - validate=True refuses duplicated keys first
            raise StageError("dataset: duplicated (symbol, date) labels")
        label = label_columns(horizon)[2]
        known = keys[label].notna().to_numpy()
        digest = _fingerprint([*cols, label], itertools.chain(
            (features[c].iloc[order[known]] for c in ["date", "symbol", *cols]), [keys[label][known]]))
        X = np.empty((len(keys), len(cols)), dtype=np.float32)
        for j, c in enumerate(cols):  # column by column: no float64 copy of the whole frame
            X[:, j] = features[c].to_numpy(dtype=np.float32, na_value=np.nan)[order]
        if "ret_20d" in features.columns:
            keys["ret_20d"] = features["ret_20d"].to_numpy()[order]
        return cls(keys=keys, X=X, feature_columns=cols, horizon=horizon, fingerprint=digest)

    # -- views ------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The binary direction label column ``fwd_dir_<h>``."""
        return label_columns(self.horizon)[2]

    @property
    def fwd_return(self) -> str:
        """The forward return column ``fwd_ret_<h>`` (fraction)."""
        return label_columns(self.horizon)[0]

    @property
    def fwd_excess(self) -> str:
        """The forward excess return over the day's universe mean ``fwd_excess_<h>`` (fraction)."""
        return label_columns(self.horizon)[1]

    @property
    def horizon_days(self) -> int:
        return HORIZONS[self.horizon]

    @property
    def known(self) -> np.ndarray:
        """Bool mask of shape (n_rows,): the label is known."""
        return self.keys[self.label].notna().to_numpy()

    def __len__(self) -> int:
        return len(self.keys)

    def labelled(self) -> Dataset:
        """The rows with a known label (a view of :attr:`X` when they come first, as they do
        when only the newest dates lack a label)."""
        known = self.known
        n = int(known.sum())
        X = self.X[:n] if known[:n].all() else self.X[known]
        return Dataset(keys=self.keys[known].reset_index(drop=True), X=X, feature_columns=self.feature_columns,
                       horizon=self.horizon, fingerprint=self.fingerprint)

    def dates(self) -> pd.DatetimeIndex:
        """The distinct dates, ascending."""
        return pd.DatetimeIndex(pd.unique(self.keys["date"]))

    def date_codes(self) -> tuple[np.ndarray, pd.DatetimeIndex]:
        """Each row's position in :meth:`dates` (ndarray of int of shape (n_rows,)) and the dates."""
        codes, uniq = pd.factorize(self.keys["date"], sort=True)
        return codes, pd.DatetimeIndex(uniq)

    def rows_between(self, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, int]:
        """Half-open row range ``[lo, hi)`` of the dates in ``[start, end]`` (rows are date-sorted)."""
        dates = self.keys["date"].to_numpy()
        return (int(np.searchsorted(dates, np.datetime64(start), side="left")),
                int(np.searchsorted(dates, np.datetime64(end), side="right")))

    def features(self, rows: slice | np.ndarray | None = None, *, with_ids: bool = False) -> pd.DataFrame:
        """The feature matrix as a frame (columns :attr:`feature_columns`) for ``rows``.

        A slice gives a frame over a view of :attr:`X` (no copy); ``with_ids`` adds
        ``symbol`` and ``date`` (needed by models that read them, such as the LSTM).
        """
        rows = slice(None) if rows is None else rows
        frame = pd.DataFrame(self.X[rows], columns=self.feature_columns, copy=False)
        if with_ids:
            frame.insert(0, "date", self.keys["date"].to_numpy()[rows])
            frame.insert(0, "symbol", self.keys["symbol"].to_numpy()[rows])
        return frame

    def target(self, objective: str = "classification", rows: slice | np.ndarray | None = None, *,
               kind: str = "auto") -> np.ndarray:
        """The training target, float64 of shape (n_rows,) (or of ``rows``); NaN where unknown.

        Parameters
        ----------
        objective : {"classification", "regression"}
        rows : slice or index array, optional
        kind : {"auto", "direction", "excess", "excess_rank"}
            ``direction``: ``fwd_dir`` (0/1); ``excess``: ``fwd_excess`` (fraction);
            ``excess_rank``: the day's cross-sectional percentile rank of ``fwd_excess`` minus
            0.5, in (-0.5, 0.5] (a cross-sectional objective: only the ordering of the day's
            stocks is learned, not the market's level or its volatility). ``auto``:
            ``direction`` for classification, ``excess`` for regression.

        Raises
        ------
        ValueError
            On an unknown ``kind``, or one that does not fit the objective.
        """
        if kind == "auto":
            kind = "direction" if objective == "classification" else "excess"
        if (kind == "direction") != (objective == "classification") or kind not in TARGETS:
            raise ValueError(f"target kind {kind!r} does not fit objective {objective!r}; "
                             f"classification takes 'direction', regression 'excess' or 'excess_rank'")
        if kind == "excess_rank":
            values = (self.keys.groupby("date")[self.fwd_excess].rank(pct=True) - 0.5).to_numpy(dtype=np.float64)
        else:
            values = self.keys[self.label if kind == "direction" else self.fwd_excess].to_numpy(dtype=np.float64)
        return values if rows is None else values[rows]

    def to_frame(self) -> pd.DataFrame:
        """Features plus labels as one frame: the shape of :func:`vfr.ml.build_dataset`'s output."""
        out = self.features(with_ids=True)
        for c in label_columns(self.horizon):
            out[c] = self.keys[c].to_numpy()
        return out

    def time_split(self, fractions: tuple[float, float, float], embargo: int | None = None) -> TimeSplit:
        """Train/validation/test dates of the labelled rows with an embargo (default the horizon).

        Raises
        ------
        StageError
            If there are too few dates for the split.
        """
        try:
            return time_split(self.labelled().dates(), fractions,
                              embargo=self.horizon_days if embargo is None else embargo)
        except ValueError as exc:
            raise StageError(f"dataset: {exc}") from exc


def dataset_order(features: pd.DataFrame, labels: pd.DataFrame, horizon: str, *,
                  validate: bool = True) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Where each row of the dataset comes from, without copying the features.

    Returns
    -------
    order : ndarray of int of shape (n_rows,), or None
        Positions in ``features`` of the dataset's rows, in (date, symbol) order; None when
        the labels repeat a key (then only a full merge can say which rows).
    keyed : DataFrame of shape (n_rows, 5)
        ``symbol``, ``date`` and the horizon's label columns, in that order.

    Raises
    ------
    StageError
        If no row has a known label.
    pandas.errors.MergeError
        If ``validate`` and a (symbol, date) pair repeats on either side.
    """
    cols = ["symbol", "date", *label_columns(horizon)]
    keys = features[["symbol", "date"]].reset_index(drop=True)
    joined = keys.merge(labels[cols], on=["symbol", "date"], how="left", sort=False,
                        validate="one_to_one" if validate else None)
    if joined[cols[-1]].notna().sum() == 0:
        raise StageError("build_dataset: no row has a known label; are prices and features from the same store?")
    if len(joined) != len(keys):
        return None, joined
    order = np.lexsort((joined["symbol"].to_numpy(), joined["date"].to_numpy()))
    return order, joined.take(order).reset_index(drop=True)


def build_dataset(features: pd.DataFrame, labels: pd.DataFrame, horizon: str, *, validate: bool = True) -> pd.DataFrame:
    """Join features with the labels of one horizon as one frame, sorted by date then symbol.

    The frame form of :class:`Dataset` (for reports and gates that want columns by name).

    Parameters
    ----------
    features : DataFrame
        Canonical features frame (``symbol``, ``date``, feature columns).
    labels : DataFrame
        Output of :func:`vfr.ml.make_labels`.
    horizon : str
        Which horizon's labels to keep.
    validate : bool
        Require one row per (date, symbol) on both sides (pandas ``MergeError`` otherwise);
        the quality gates pass False so that duplicates reach their temporal-integrity gate
        and are reported.

    Returns
    -------
    DataFrame of shape (n_rows, n_features + 5)
        Features plus ``fwd_ret_<h>``, ``fwd_excess_<h>``, ``fwd_dir_<h>``; rows without a
        known label are kept (their label is NaN) so the newest dates can still be scored.

    Raises
    ------
    StageError
        If the two frames share no (date, symbol) rows.
    """
    order, keyed = dataset_order(features, labels, horizon, validate=validate)
    if order is None:  # duplicated label keys (validate=False): the plain, copying way
        data = features.merge(labels[["symbol", "date", *label_columns(horizon)]], on=["symbol", "date"],
                              how="left")
        return data.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    data = features.take(order).reset_index(drop=True)
    for c in label_columns(horizon):
        data[c] = keyed[c].to_numpy()
    return data


def data_fingerprint(data: pd.DataFrame, columns: list[str], rows: np.ndarray | None = None) -> str:
    """SHA-256 of the rows and values of ``columns`` (plus date and symbol): the data's identity.

    Parameters
    ----------
    data : DataFrame
    columns : list of str
    rows : ndarray of bool of shape (len(data),) or of int positions, optional
        Only these rows, in this order (default all). Columns are hashed one at a time
        (pandas ``hash_pandas_object`` of each), so no copy of the frame is made.
    """
    return _fingerprint(columns, (data[c] if rows is None else data[c].iloc[rows]
                                  for c in ["date", "symbol", *columns]))


def _fingerprint(columns: list[str], values: Iterable[pd.Series]) -> str:
    """SHA-256 of the column names and of each Series' values (date, symbol, then ``columns``)."""
    h = hashlib.sha256()
    h.update(",".join(columns).encode())
    for v in values:
        h.update(pd.util.hash_pandas_object(v, index=False).to_numpy().tobytes())
    return h.hexdigest()
