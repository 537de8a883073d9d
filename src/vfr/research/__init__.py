"""Research protocol: the trials register behind every reported comparison (see docs/research.md).

The register (:mod:`vfr.research.trials`) imports only :mod:`vfr.metrics`, :mod:`vfr.config`
and :mod:`vfr.errors`; the evaluation of candidates (:mod:`vfr.research.evaluate`: classic
signals or walk-forward models on one segment, a top-N book net of costs, DSR, PBO) sits
above the data, ML, scoring and backtest layers and is used by ``vfr research``. Never the
serving or CLI layers.

Public interface::

    SEGMENTS            {"research": (2002-01-01, 2014-12-31), "holdout": (2015-01-01, 2019-12-31)}
    record_trial(register, candidate, change, segment, metrics) -> TrialRecord     one appended row
    record_holdout_touch(register, candidate, change, metrics, force=False, reason=None) -> TrialRecord
        refuses a candidate's second holdout evaluation (HoldoutAlreadyTouchedError) unless forced with a reason
    read_register(register) -> [TrialRecord]     (a torn last line is ignored)
    register_frame(register) -> DataFrame        one row per trial, metrics as columns
    n_trials(register, segment=None) -> int      trials so far (the N of the deflated Sharpe ratio)
    holdout_touches(register, candidate) -> int
    default_register_path(settings) -> Path      <home>/reports/trials.jsonl
    git_commit(cwd=None) -> str | None
"""

from vfr.research.trials import (
    HOLDOUT,
    METRIC_KEYS,
    RESEARCH,
    SEGMENTS,
    HoldoutAlreadyTouchedError,
    TrialRecord,
    default_register_path,
    git_commit,
    holdout_touches,
    n_trials,
    read_register,
    record_holdout_touch,
    record_trial,
    register_frame,
)

__all__ = [
    "HOLDOUT",
    "METRIC_KEYS",
    "RESEARCH",
    "SEGMENTS",
    "HoldoutAlreadyTouchedError",
    "TrialRecord",
    "default_register_path",
    "git_commit",
    "holdout_touches",
    "n_trials",
    "read_register",
    "record_holdout_touch",
    "record_trial",
    "register_frame",
]
