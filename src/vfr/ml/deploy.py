"""Deploy rules (a table, evaluated top to bottom) and paired tests on out-of-sample series.

The rules of the seed plan, as data (:data:`DEPLOY_RULES`):

====================================  =============  =====================  ==========
rule                                  min AUC gain   needs better Sharpe    action
====================================  =============  =====================  ==========
large AUC gain                        0.05           no                     deploy
AUC gain with better Sharpe           0.02           yes                    deploy
small AUC gain                        0.01           no                     ab_test
(no rule matched)                                                           keep
====================================  =============  =====================  ==========

AUC gain = challenger ROC-AUC - champion ROC-AUC on the same out-of-sample rows; Sharpe is
the top-decile portfolio's (see :func:`vfr.ml.tuning.score_predictions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

ACTIONS = ("deploy", "ab_test", "keep")


@dataclass(frozen=True)
class DeployRule:
    """One row of the rules table: if AUC gain >= ``min_auc_gain`` (and, when asked, the
    challenger's Sharpe is higher), take ``action``."""

    name: str
    min_auc_gain: float
    require_better_sharpe: bool
    action: str


DEPLOY_RULES: tuple[DeployRule, ...] = (
    DeployRule("large AUC gain", 0.05, False, "deploy"),
    DeployRule("AUC gain with better Sharpe", 0.02, True, "deploy"),
    DeployRule("small AUC gain", 0.01, False, "ab_test"),
)
DEFAULT_ACTION = "keep"


@dataclass(frozen=True)
class Decision:
    """What the rules say about a challenger."""

    action: str
    rule: str
    auc_gain: float
    sharpe_gain: float


def rules_table(rules: Iterable[DeployRule] = DEPLOY_RULES) -> pd.DataFrame:
    """The rules as a DataFrame (one row per rule, in evaluation order)."""
    return pd.DataFrame([asdict(r) for r in rules])


def rules_from_records(records: Iterable[Mapping]) -> tuple[DeployRule, ...]:
    """Rules from dicts (e.g. rows of a CSV/JSON table); validates the action names.

    Raises
    ------
    ValueError
        On an unknown action.
    """
    out = []
    for r in records:
        rule = DeployRule(str(r["name"]), float(r["min_auc_gain"]), bool(r["require_better_sharpe"]), str(r["action"]))
        if rule.action not in ACTIONS:
            raise ValueError(f"deploy rule {rule.name!r}: unknown action {rule.action!r}; expected one of {ACTIONS}")
        out.append(rule)
    return tuple(out)


def decide(challenger: Mapping[str, float], champion: Mapping[str, float],
           rules: Iterable[DeployRule] = DEPLOY_RULES) -> Decision:
    """Apply the first matching rule to a challenger vs the champion.

    Parameters
    ----------
    challenger, champion : mapping
        Out-of-sample metrics on the same rows, with ``roc_auc`` and ``sharpe`` (NaN
        Sharpe never counts as better).
    rules : iterable of DeployRule
        Evaluated in order; default :data:`DEPLOY_RULES`.

    Returns
    -------
    Decision
        ``keep`` (rule ``"no rule matched"``) when no rule applies or the AUC gain is undefined.
    """
    auc_gain = float(challenger.get("roc_auc", np.nan)) - float(champion.get("roc_auc", np.nan))
    sharpe_gain = float(challenger.get("sharpe", np.nan)) - float(champion.get("sharpe", np.nan))
    if np.isfinite(auc_gain):
        for rule in rules:
            if auc_gain >= rule.min_auc_gain - 1e-12 and (not rule.require_better_sharpe or sharpe_gain > 0):
                return Decision(rule.action, rule.name, auc_gain, sharpe_gain)
    return Decision(DEFAULT_ACTION, "no rule matched", auc_gain, sharpe_gain)


def paired_test(a: pd.Series, b: pd.Series, method: str = "dm", horizon: int = 1) -> dict[str, float]:
    """Is series ``a`` better than ``b`` on average? Paired test on aligned dates.

    Parameters
    ----------
    a, b : Series indexed by date
        Per-date out-of-sample values where higher is better (daily IC or portfolio
        returns) of two models; only dates present and finite in both are used.
    method : {"dm", "t"}
        ``t``: paired t-test (``scipy.stats.ttest_rel``). ``dm``: Diebold & Mariano (1995)
        on d = a - b with a Newey-West variance using ``horizon - 1`` lags (overlapping
        h-day labels make neighbouring values correlated) and the Harvey, Leybourne &
        Newbold (1997) small-sample correction, compared with Student's t with n-1 dof.
    horizon : int
        Label horizon in trading days (DM lag count).

    Returns
    -------
    dict
        ``mean_diff`` (mean of a - b), ``stat``, ``p_value`` (two-sided), ``n``.

    Raises
    ------
    ValueError
        On an unknown method.
    """
    joined = pd.concat([pd.Series(a, dtype=float), pd.Series(b, dtype=float)], axis=1, join="inner").dropna()
    x, y = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy()
    n = len(x)
    d = x - y
    if n < 3 or np.allclose(d, d[0] if n else 0):
        return {"mean_diff": float(d.mean()) if n else float("nan"), "stat": float("nan"), "p_value": float("nan"),
                "n": n}
    if method == "t":
        res = stats.ttest_rel(x, y)
        return {"mean_diff": float(d.mean()), "stat": float(res.statistic), "p_value": float(res.pvalue), "n": n}
    if method != "dm":
        raise ValueError(f"unknown method {method!r}; expected 'dm' or 't'")
    h = max(1, int(horizon))
    dc = d - d.mean()
    gamma = [float(dc[k:] @ dc[: n - k]) / n for k in range(h)]
    var = gamma[0] + 2 * sum(gamma[1:])
    if var <= 0:
        var = gamma[0]
    dm = d.mean() / np.sqrt(var / n)
    correction = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = float(dm * correction)
    return {"mean_diff": float(d.mean()), "stat": stat, "p_value": float(2 * stats.t.sf(abs(stat), n - 1)), "n": n}


#: Run-metric keys read for the registry leaderboard (as logged by ``vfr train``).
LEADERBOARD_METRICS = {"roc_auc": "wf.model.roc_auc", "rank_ic": "wf.model.rank_ic_mean",
                       "rank_icir": "wf.model.rank_icir", "sharpe": "wf.model.sharpe_top_decile",
                       "decile_spread": "wf.model.decile_spread", "f1": "wf.model.f1"}


def registry_leaderboard(registry, name: str, rules: Iterable[DeployRule] = DEPLOY_RULES) -> pd.DataFrame:
    """Registered versions of ``name`` side by side, with each one's rule decision against the champion.

    Parameters
    ----------
    registry : vfr.ml.ModelRegistry
    name : str
        Registered model name.

    Returns
    -------
    DataFrame
        One row per version (newest first): ``version``, ``aliases``, ``algorithm``, the
        walk-forward metrics of :data:`LEADERBOARD_METRICS` (NaN when not logged) and
        ``decision`` / ``rule`` (``champion`` for the champion itself).
    """
    rows = []
    versions = registry.versions(name)
    metrics = {v["version"]: registry.run_metrics(name, v["version"]) for v in versions}
    champion = registry.champion_version(name)
    champ = {k: metrics.get(champion, {}).get(key, np.nan) for k, key in LEADERBOARD_METRICS.items()}
    for v in versions:
        m = {k: metrics[v["version"]].get(key, np.nan) for k, key in LEADERBOARD_METRICS.items()}
        if v["version"] == champion:
            decision, rule = "champion", ""
        elif champion is None:
            decision, rule = "no champion", ""
        else:
            d = decide(m, champ, rules)
            decision, rule = d.action, d.rule
        rows.append({"version": v["version"], "aliases": ",".join(v["aliases"]), "algorithm": v["algorithm"],
                     **m, "decision": decision, "rule": rule})
    return pd.DataFrame(rows)
