"""An LSTM over each stock's last ``window`` days of features (PyTorch, CPU).

PyTorch is optional (the ``torch`` extra: ``pip install 'vfr[torch]'``) and imported only
when an LSTM is fitted or loaded. The sequence of the row (t, s) is the rows of symbol s in
the input frame with dates <= t, the last ``window`` of them (older history is padded by
repeating the first row), so it never looks ahead; the caller passes the history it wants
used (e.g. the last ``window`` dates before the scored date).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vfr.ml.models.base import Model, ModelError


def require_torch():
    """Import torch or raise :class:`ModelError` saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ModelError("the LSTM needs PyTorch: pip install 'vfr[torch]' (torch==2.13.0, CPU)") from exc
    return torch


def window_index(symbols: np.ndarray, window: int) -> np.ndarray:
    """Row indices of each row's window, for rows sorted by (symbol, date).

    Parameters
    ----------
    symbols : ndarray of shape (n_rows,)
        Symbol of each row; rows of a symbol are contiguous and in date order.
    window : int
        Sequence length.

    Returns
    -------
    ndarray of int64, shape (n_rows, window)
        ``out[i, -1] == i``; ``out[i, k]`` is the row ``window-1-k`` rows earlier of the same
        symbol, clipped at the symbol's first row. Never an index > i.
    """
    n = len(symbols)
    idx = np.arange(n)
    starts = np.r_[True, symbols[1:] != symbols[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(starts, idx, 0)) if n else idx
    lags = np.arange(window - 1, -1, -1)
    return np.maximum(idx[:, None] - lags[None, :], first[:, None])


class LSTMModel(Model):
    """One-layer LSTM + linear head; inputs standardised with the training mean/std (NaN -> 0).

    Parameters (``params``): ``window`` (days, 20), ``hidden`` (32), ``epochs`` (4),
    ``batch_size`` (512), ``lr`` (1e-3), ``max_train_rows`` (40,000 target rows sampled at
    random per fit, to bound CPU time). Early stopping keeps the epoch with the lowest
    validation loss when ``valid`` is given. The input frame must have ``symbol`` and ``date``.
    """

    uses_ids = True
    algorithm = "lstm"
    defaults = {"window": 20, "hidden": 32, "epochs": 4, "batch_size": 512, "lr": 1e-3, "max_train_rows": 40_000}

    def _sorted(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if "symbol" not in X.columns or "date" not in X.columns:
            raise ModelError("lstm: the input frame needs 'symbol' and 'date' columns to build windows")
        order = np.lexsort((X["date"].to_numpy(), X["symbol"].to_numpy()))
        return order, X["symbol"].to_numpy()[order]

    def _standardised(self, X: pd.DataFrame, order: np.ndarray) -> np.ndarray:
        Z = (self._matrix(X)[order] - self.mean) / self.std
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def _net(self):
        torch = require_torch()

        class Net(torch.nn.Module):
            def __init__(self, n_in: int, hidden: int) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(n_in, hidden, batch_first=True)
                self.head = torch.nn.Linear(hidden, 1)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.head(out[:, -1, :]).squeeze(-1)

        torch.manual_seed(self.seed)
        return Net(len(self.feature_columns), int(self.params["hidden"]))

    def _prepare(self, X, y):
        order, syms = self._sorted(X)
        Z = self._standardised(X, order)
        win = window_index(syms, int(self.params["window"]))
        ys = None if y is None else np.asarray(y, dtype=np.float64)[order]
        return order, Z, win, ys

    def _fit(self, X, y, valid) -> None:
        torch = require_torch()
        torch.set_num_threads(max(1, self.num_threads))
        raw = self._matrix(X)[~np.isnan(y)]
        self.mean = np.nanmean(raw, axis=0).astype(np.float32)
        self.mean = np.nan_to_num(self.mean)
        self.std = np.nan_to_num(np.nanstd(raw, axis=0)).astype(np.float32)
        self.std[self.std == 0] = 1.0
        _, Z, win, ys = self._prepare(X, y)
        rows = np.flatnonzero(~np.isnan(ys))
        rng = np.random.default_rng(self.seed)
        if len(rows) > self.params["max_train_rows"]:
            rows = np.sort(rng.choice(rows, int(self.params["max_train_rows"]), replace=False))
        target = ys if self.objective == "classification" else ys / self.y_scale
        vsets = None
        if valid is not None:
            _, vZ, vwin, vy = self._prepare(valid[0], valid[1])
            vrows = np.flatnonzero(~np.isnan(vy))
            vt = vy if self.objective == "classification" else vy / self.y_scale
            vsets = (torch.from_numpy(vZ[vwin[vrows]]), torch.from_numpy(vt[vrows].astype(np.float32)))
        net = self._net()
        loss_fn = torch.nn.BCEWithLogitsLoss() if self.objective == "classification" else torch.nn.MSELoss()
        opt = torch.optim.Adam(net.parameters(), lr=float(self.params["lr"]))
        bs = int(self.params["batch_size"])
        best, best_state = np.inf, None
        for epoch in range(int(self.params["epochs"])):
            net.train()
            perm = rng.permutation(rows)
            for b in range(0, len(perm), bs):
                batch = perm[b:b + bs]
                xb = torch.from_numpy(Z[win[batch]])
                yb = torch.from_numpy(target[batch].astype(np.float32))
                opt.zero_grad()
                loss = loss_fn(net(xb), yb)
                loss.backward()
                opt.step()
            if vsets is not None and len(vsets[1]):
                net.eval()
                with torch.no_grad():
                    vloss = float(loss_fn(net(vsets[0]), vsets[1]))
                if vloss < best:
                    best, best_state = vloss, {k: v.clone() for k, v in net.state_dict().items()}
                    self.best_iteration = epoch + 1
        if best_state is not None:
            net.load_state_dict(best_state)
        else:
            self.best_iteration = int(self.params["epochs"])
        self.net = net.eval()

    def _raw(self, X):
        torch = require_torch()
        order, Z, win, _ = self._prepare(X, None)
        out = np.empty(len(order))
        with torch.no_grad():
            for b in range(0, len(order), 4096):
                z = self.net(torch.from_numpy(Z[win[b:b + 4096]])).numpy().astype(np.float64)
                out[b:b + 4096] = 1 / (1 + np.exp(-z)) if self.objective == "classification" else z * self.y_scale
        result = np.empty(len(order))
        result[order] = out
        return result

    def _importances(self):
        w = self.net.lstm.weight_ih_l0.detach().numpy()  # shape (4 * hidden, n_features)
        return np.abs(w).sum(axis=0)

    def _state(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def _restore(self, state):
        self.mean = np.asarray(state["mean"], dtype=np.float32)
        self.std = np.asarray(state["std"], dtype=np.float32)

    def _save_native(self, path: Path) -> None:
        torch = require_torch()
        torch.save(self.net.state_dict(), path / "model.pt")

    def _load_native(self, path: Path) -> None:
        torch = require_torch()
        net = self._net()
        net.load_state_dict(torch.load(path / "model.pt", weights_only=True))
        self.net = net.eval()
