"""``MarketStore``: the one I/O adapter between VFR frames and a SQL database.

Two backends behind one SQLAlchemy URL:

* DuckDB (``duckdb:///path/file.duckdb``, the default): bulk data goes through DuckDB's
  native connection as a registered Arrow table (zero copy), reads come back as Arrow.
* PostgreSQL (``postgresql+psycopg://user@host:5432/db``): bulk writes use ``COPY ... FROM
  STDIN`` (csv) through psycopg, bulk reads ``COPY (SELECT ...) TO STDOUT``.

Every write is one database transaction: a failure leaves the store as it was.
"""

from __future__ import annotations

import datetime
import io
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from vfr.data import tables
from vfr.data.adjust import PRICES_COLUMNS
from vfr.data.snapshot import snapshot_dir
from vfr.errors import DataValidationError, StageError

if TYPE_CHECKING:
    from vfr.config import Settings

DateLike: TypeAlias = str | datetime.date | pd.Timestamp | np.datetime64

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
_STAGE_PREFIX = "_vfr_stage_"

# logical column types -> (DuckDB type, PostgreSQL type, pandas dtype on read)
_TYPES: dict[str, tuple[str, str, str]] = {
    "text": ("VARCHAR", 'TEXT COLLATE "C"', "str"),  # byte order, as pandas sorts
    "date": ("DATE", "DATE", "datetime64[ns]"),
    "timestamp": ("TIMESTAMP", "TIMESTAMP", "datetime64[ns]"),
    "real": ("FLOAT", "REAL", "float32"),
    "double": ("DOUBLE", "DOUBLE PRECISION", "float64"),
    "smallint": ("SMALLINT", "SMALLINT", "int16"),
    "integer": ("INTEGER", "INTEGER", "int32"),
    "bigint": ("BIGINT", "BIGINT", "int64"),
    "boolean": ("BOOLEAN", "BOOLEAN", "bool"),
}
# information_schema data_type (lower case, both backends) -> logical type
_FROM_DB: dict[str, str] = {
    "varchar": "text", "text": "text", "character varying": "text", "character": "text",
    "date": "date",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp",
    "timestamp_ns": "timestamp", "timestamp_us": "timestamp", "timestamp_ms": "timestamp",
    "timestamp_s": "timestamp",
    "float": "real", "real": "real",
    "double": "double", "double precision": "double",
    "smallint": "smallint", "tinyint": "smallint",
    "integer": "integer",
    "bigint": "bigint", "hugeint": "bigint",
    "boolean": "boolean",
}
_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    "real": pa.float32(), "double": pa.float64(), "smallint": pa.int16(),
    "integer": pa.int32(), "bigint": pa.int64(), "boolean": pa.bool_(),
}

#: Schema of the ``prices`` table (the canonical prices frame).
PRICES_SCHEMA: dict[str, str] = {"symbol": "text", "date": "date", **{
    c: "double" for c in PRICES_COLUMNS if c not in ("symbol", "date")}}
UNIVERSE_COLUMNS = ["symbol", "name", "sector"]


def _check_name(name: str) -> str:
    """Validated, lower-cased table name (letters, digits, underscore; <= 48 chars)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid table name {name!r}: use letters, digits and underscore, "
                         "starting with a letter or underscore (at most 48 characters)")
    return name.lower()


def _q(identifier: str) -> str:
    """Quote an SQL identifier (double quotes, embedded quotes doubled)."""
    if "\x00" in identifier:
        raise ValueError(f"invalid identifier {identifier!r}")
    return '"' + identifier.replace('"', '""') + '"'


def _logical_type(series: pd.Series) -> str:
    """Logical SQL type of a column; TypeError for dtypes the store cannot hold."""
    dt = series.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        size = np.dtype(dt.numpy_dtype if hasattr(dt, "numpy_dtype") else dt).itemsize
        unsigned = pd.api.types.is_unsigned_integer_dtype(dt)
        if size <= 2 and not (unsigned and size == 2):
            return "smallint"
        if size <= 4 and not (unsigned and size == 4):
            return "integer"
        return "bigint"
    if pd.api.types.is_float_dtype(dt):
        return "real" if np.dtype(getattr(dt, "numpy_dtype", dt)) == np.float32 else "double"
    if isinstance(dt, pd.DatetimeTZDtype):
        raise TypeError(f"column {series.name!r}: tz-aware datetimes are not supported; "
                        "convert to tz-naive first")
    if pd.api.types.is_datetime64_dtype(dt):
        return "timestamp"
    if pd.api.types.is_string_dtype(dt):
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind in ("string", "empty"):
            return "text"
    raise TypeError(f"column {series.name!r}: unsupported dtype {dt} "
                    "(use bool, int, float, str or tz-naive datetime64)")


def _schema_of(df: pd.DataFrame) -> dict[str, str]:
    """Column name -> logical type of a frame (TypeError/ValueError on bad columns)."""
    names = [str(c) for c in df.columns]
    if len({n.lower() for n in names}) != len(names):
        raise ValueError(f"duplicate column names (case-insensitive): {names}")
    if not names:
        raise ValueError("frame has no columns")
    return {str(c): _logical_type(df[c]) for c in df.columns}


def _to_arrow(df: pd.DataFrame, schema: dict[str, str]) -> pa.Table:
    """Arrow table of ``df`` with the arrow types of ``schema`` (NaN -> null)."""
    arrays = []
    for col, logical in schema.items():
        s = df[col]
        if logical in ("timestamp", "date"):
            arr = pa.array(s.to_numpy(dtype="datetime64[us]"), type=pa.timestamp("us"),
                           from_pandas=True)
            arrays.append(arr.cast(pa.date32()) if logical == "date" else arr)
        elif logical == "text":
            arrays.append(pa.array(s.astype("str"), type=pa.string(), from_pandas=True))
        else:
            # a plain NumPy float column is passed as its array: Arrow then shares its values
            # (only the null bitmap is new) instead of copying them, as it does from a Series
            values = s.to_numpy() if isinstance(s.dtype, np.dtype) and s.dtype.kind == "f" else s
            arr = pa.array(values, from_pandas=True)
            # unsigned ints are kept as-is: values beyond the signed range fail at insert time
            if not pa.types.is_unsigned_integer(arr.type):
                arr = arr.cast(_ARROW[logical])
            arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=list(schema))


def _csv_chunks(table: pa.Table, rows: int = 250_000) -> Iterator[bytes]:
    """Headerless csv (PostgreSQL COPY csv format: null = unquoted empty) in chunks."""
    opts = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for start in range(0, table.num_rows, rows):
        buf = io.BytesIO()
        pacsv.write_csv(table.slice(start, rows), buf, opts)
        yield buf.getvalue()


_PG_EPOCH_DAYS = 10957
_PG_BE = {"real": ">f4", "double": ">f8", "smallint": ">i2", "integer": ">i4", "bigint": ">i8",
       "boolean": "u1", "date": ">i4", "timestamp": ">i8"}
_MAX_GROUPS = 64

def _pg_binary_chunks(table: pa.Table, types: list[str]) -> list[bytes] | None:
    """PostgreSQL binary COPY stream of ``table``, built with vectorised numpy.

    Rows are grouped by the byte lengths of their text values so each group has a fixed
    record layout (a numpy structured array in network byte order). Returns None (caller
    falls back to csv) when a column has NULLs, an unsigned integer type, or the text
    lengths give more than ``_MAX_GROUPS`` layouts.
    """
    n, k = table.num_rows, table.num_columns
    fixed, texts = {}, {}
    for j, (col, logical) in enumerate(zip(table.columns, types, strict=True)):
        arr = col.combine_chunks()
        if logical == "text":
            arr = arr.cast(pa.string())
            if arr.null_count:
                return None
            offs = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1].astype(np.int64)
            buf = arr.buffers()[2]
            data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
            texts[j] = (offs, data, np.diff(offs))
        else:
            if arr.null_count or pa.types.is_unsigned_integer(arr.type) and logical != "boolean":
                return None
            if logical == "date":
                vals = np.asarray(arr.cast(pa.int32())).astype(np.int32) - _PG_EPOCH_DAYS
            elif logical == "timestamp":
                vals = np.asarray(arr.cast(pa.timestamp("us")).cast(pa.int64())) - _PG_EPOCH_DAYS * 86_400_000_000
            else:
                vals = np.asarray(arr)
            fixed[j] = vals
    if texts:
        key = np.zeros(n, np.int64)
        span = 1
        for _, _, lens in texts.values():
            base = int(lens.max()) + 1 if n else 1
            span *= base
            if span > 2**62:
                return None
            key = key * base + lens
        codes, uniq = pd.factorize(key, sort=True)
        if len(uniq) > _MAX_GROUPS:
            return None
        groups = np.zeros((len(uniq), len(texts)), np.int64)
        rest = np.asarray(uniq, np.int64)
        for c, (_, _, lens) in reversed(list(enumerate(texts.values()))):
            base = int(lens.max()) + 1 if n else 1
            groups[:, c], rest = rest % base, rest // base
        inverse = codes.astype(np.int16)
    else:
        groups, inverse = np.zeros((1, 0), np.int64), np.zeros(n, np.int16)
    chunks = [b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8]
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1))
    text_cols = list(texts)
    for g, lens in enumerate(groups):
        idx = order[bounds[g]:bounds[g + 1]]
        if not len(idx):
            continue
        L = dict(zip(text_cols, lens.tolist(), strict=True))
        fields = [("nf", ">i2")]
        for j, logical in enumerate(types):
            fields.append((f"l{j}", ">i4"))
            if j in texts:
                if L[j]:
                    fields.append((f"v{j}", f"S{L[j]}"))
            else:
                fields.append((f"v{j}", _PG_BE[logical]))
        rec = np.empty(len(idx), dtype=np.dtype(fields))
        rec["nf"] = k
        for j, logical in enumerate(types):
            if j in texts:
                rec[f"l{j}"] = L[j]
                if L[j]:
                    offs, data, _ = texts[j]
                    rec[f"v{j}"] = data[offs[idx][:, None] + np.arange(L[j])].view(f"S{L[j]}").ravel()
            else:
                rec[f"l{j}"] = np.dtype(_PG_BE[logical]).itemsize
                rec[f"v{j}"] = fixed[j][idx]
        chunks.append(rec.tobytes())
    chunks.append(b"\xff\xff")
    return chunks


class MarketStore:
    """SQL store of the market data and of derived tables (features, predictions, ...).

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``duckdb:///path/file.duckdb`` (parent folders are created) or
        ``postgresql+psycopg://user@host:5432/db``.
    **engine_kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Notes
    -----
    Tables (names in :mod:`vfr.data.tables`): ``prices`` (the canonical prices frame, one
    row per (symbol, date)), ``securities`` (symbol, name, sector), ``universe_membership``
    and any derived table written with :meth:`replace_table`. Table names are letters, digits
    and underscore and are stored lower case. Use as a context manager or call :meth:`close`.

    Long-running readers (the API) open a read-only snapshot with :meth:`reader`, so they never
    hold the DuckDB file writers need; once one has, a store that wrote publishes a new snapshot
    when it is closed (:mod:`vfr.data.snapshot`).
    """

    def __init__(self, url: str, *, read_only: bool = False, **engine_kwargs: Any) -> None:
        parsed = sa.engine.make_url(url)
        self.url = url
        #: the URL with any password masked (for logs, lineage records and messages)
        self.public_url = parsed.render_as_string(hide_password=True)
        self.backend = parsed.get_backend_name()
        if self.backend not in ("duckdb", "postgresql"):
            raise ValueError(f"unsupported store backend {self.backend!r} (use duckdb or postgresql)")
        self.read_only = read_only
        #: the DuckDB file (None for PostgreSQL and in-memory DuckDB)
        self.db_file: Path | None = None
        #: the snapshot a :meth:`reader` store reads (None otherwise)
        self.snapshot: Path | None = None
        self._dirty = False
        if self.backend == "duckdb":
            db = parsed.database or ":memory:"
            if db == ":memory:":
                engine_kwargs.setdefault("poolclass", sa.pool.StaticPool)
            else:
                self.db_file = Path(db).expanduser()
                if not read_only:
                    self.db_file.parent.mkdir(parents=True, exist_ok=True)
            if read_only:
                engine_kwargs.setdefault("connect_args", {})["read_only"] = True
        elif parsed.get_driver_name() != "psycopg":
            raise ValueError("PostgreSQL stores need the psycopg (3) driver: "
                             "postgresql+psycopg://...")
        self.engine: sa.Engine = sa.create_engine(url, **engine_kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketStore:
        """Store at ``settings.resolved_store_url`` (DuckDB file in VFR home by default)."""
        return cls(settings.resolved_store_url)

    @classmethod
    def reader(cls, url: str, **engine_kwargs: Any) -> MarketStore:
        """A store for a long-running reader that never blocks writers.

        DuckDB file: the latest published snapshot, opened read-only (one is published first
        when there is none yet). PostgreSQL (and in-memory DuckDB): the store itself.

        Raises
        ------
        StageError
            No snapshot exists and the store file is held by a writer (or does not exist).
        """
        from vfr.data import snapshot

        probe = sa.engine.make_url(url)
        db = probe.database or ":memory:"
        if probe.get_backend_name() != "duckdb" or db == ":memory:":
            return cls(url, **engine_kwargs)
        snap = snapshot.current(db)
        if snap is None:
            if not Path(db).expanduser().exists():
                raise StageError(f"the store {db} does not exist yet; run `vfr data ingest` first")
            with cls(url) as store:
                store.publish_snapshot()
            snap = snapshot.current(db)
        store = cls(f"duckdb:///{snap}", read_only=True, **engine_kwargs)
        store.db_file, store.snapshot = Path(db).expanduser(), snap
        return store

    def snapshot_is_stale(self) -> bool:
        """Whether a newer snapshot than the one this :meth:`reader` store reads was published."""
        if self.snapshot is None or self.db_file is None:
            return False
        from vfr.data import snapshot

        latest = snapshot.current(self.db_file)
        return latest is not None and latest != self.snapshot

    def publish_snapshot(self) -> Path | None:
        """Publish this DuckDB store's content as the readers' snapshot (None for other backends)."""
        if self.db_file is None or self.read_only or self.snapshot is not None:
            return None
        from vfr.data import snapshot

        fairy = self.engine.raw_connection()
        try:
            path = snapshot.publish(self.db_file, fairy.driver_connection)
        finally:
            fairy.close()
        self._dirty = False
        return path

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Publish a snapshot when this DuckDB store wrote and readers use snapshots, then close
        all connections (the DuckDB file is released). A failed publish is logged: the writes are committed and
        readers keep the previous snapshot until the next one."""
        if self._dirty and self.db_file is not None and snapshot_dir(self.db_file).exists():
            try:
                self.publish_snapshot()
            except Exception:  # noqa: BLE001 - the data are committed; only the readers' copy is late
                import logging

                logging.getLogger(__name__).exception("could not publish a snapshot of %s", self.db_file)
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MarketStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- low level ---------------------------------------------------------------------
    @property
    def _duck(self) -> bool:
        return self.backend == "duckdb"

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """Native driver connection inside one transaction (commit on success)."""
        fairy = self.engine.raw_connection()
        con: Any = fairy.driver_connection  # None only once the connection is invalidated
        try:
            if self._duck:
                con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                if self._duck:
                    con.execute("ROLLBACK")
                else:
                    con.rollback()
                raise
            if self._duck:
                con.execute("COMMIT")
            else:
                con.commit()
            self._dirty = True
        finally:
            fairy.close()

    def _sql_type(self, logical: str) -> str:
        return _TYPES[logical][0 if self._duck else 1]

    def _create_sql(self, name: str, schema: dict[str, str], *, temp: bool = False,
                    if_not_exists: bool = False, primary_key: Sequence[str] = (),
                    not_null: Sequence[str] = ()) -> str:
        cols = [f"{_q(c)} {self._sql_type(t)}{' NOT NULL' if c in not_null else ''}"
                for c, t in schema.items()]
        if primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(_q(c) for c in primary_key)})")
        return (f"CREATE {'TEMP ' if temp else ''}TABLE {'IF NOT EXISTS ' if if_not_exists else ''}"
                f"{_q(name)} ({', '.join(cols)})")

    def _load(self, con: Any, target: str, table: pa.Table, types: list[str]) -> None:
        """Append ``table`` (logical column ``types``) to the existing table ``target``."""
        cols = ", ".join(_q(c) for c in table.column_names)
        if self._duck:
            view = f"_vfr_arrow_{uuid.uuid4().hex}"
            con.register(view, table)
            try:
                con.execute(f"INSERT INTO {_q(target)} ({cols}) SELECT {cols} FROM {_q(view)}")
            finally:
                con.unregister(view)
        else:
            chunks = _pg_binary_chunks(table, types)
            fmt = "binary" if chunks is not None else "csv"
            sql = f"COPY {_q(target)} ({cols}) FROM STDIN (FORMAT {fmt})"
            with con.cursor() as cur, cur.copy(sql) as copy:
                for chunk in chunks if chunks is not None else _csv_chunks(table):
                    copy.write(chunk)

    def _columns(self, name: str) -> dict[str, str]:
        """Column -> logical type of an existing table (empty when the table is absent)."""
        q = sa.text("SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = :t "
                    "ORDER BY ordinal_position")
        with self.engine.connect() as conn:
            rows = conn.execute(q, {"t": name}).all()
        out = {}
        for col, dtype in rows:
            key = str(dtype).lower().split("(")[0].strip()
            if key not in _FROM_DB:
                raise TypeError(f"table {name!r} column {col!r}: unsupported SQL type {dtype}")
            out[str(col)] = _FROM_DB[key]
        return out

    def _tables(self) -> list[str]:
        q = sa.text("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                    "ORDER BY table_name")
        with self.engine.connect() as conn:
            names = [str(r[0]) for r in conn.execute(q)]
        return [n for n in names if not n.startswith(_STAGE_PREFIX)]

    # -- public: generic tables -----------------------------------------------------------
    def has_table(self, name: str) -> bool:
        """Whether table ``name`` exists in the store."""
        return _check_name(name) in self._tables()

    def drop_table(self, name: str) -> bool:
        """Drop table ``name`` if it exists (atomic); True when there was one."""
        name = _check_name(name)
        if name not in self._tables():
            return False
        with self._transaction() as con:
            con.execute(f"DROP TABLE IF EXISTS {_q(name)}")
        return True

    def table_counts(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Row count of every table in the store (or of those of ``names`` that exist), by table name."""
        tables = self._tables() if names is None else [t for t in self._tables() if t in set(names)]
        if not tables:
            return {}
        q = " UNION ALL ".join(
            "SELECT '{}' AS t, COUNT(*) AS n FROM {}".format(t.replace("'", "''"), _q(t))
            for t in tables)
        with self.engine.connect() as conn:
            return {str(t): int(n) for t, n in conn.exec_driver_sql(q).all()}

    def replace_table(self, name: str, df: pd.DataFrame) -> int:
        """Atomically replace (or create) the whole table ``name`` with ``df``.

        The frame is written to a staging table; then, in the same transaction, the old
        table is dropped and the staging table renamed. Readers see the old or the new table,
        never a partial one; any failure leaves the old table untouched.

        Parameters
        ----------
        name : str
            Table name: letters, digits, underscore (stored lower case).
        df : DataFrame, shape (n, k)
            Columns of dtype bool, (nullable) int, float32/float64, str, or tz-naive
            datetime64; NaN/None are stored as NULL. The index is not stored.

        Returns
        -------
        int
            Rows written (n).

        Raises
        ------
        ValueError
            Invalid table name or duplicate/empty column names.
        TypeError
            A column has an unsupported dtype (object of mixed types, tz-aware, ...).
        sqlalchemy.exc.DBAPIError, duckdb.Error, psycopg.Error
            The database rejected the data (e.g. an unsigned value out of range); the
            transaction is rolled back.
        """
        name = _check_name(name)
        schema = _schema_of(df)
        table = _to_arrow(df, schema)
        stage = f"{_STAGE_PREFIX}{name}"
        with self._transaction() as con:
            con.execute(f"DROP TABLE IF EXISTS {_q(stage)}")
            con.execute(self._create_sql(stage, schema))
            self._load(con, stage, table, list(schema.values()))
            con.execute(f"DROP TABLE IF EXISTS {_q(name)}")
            con.execute(f"ALTER TABLE {_q(stage)} RENAME TO {_q(name)}")
        return len(df)

    def read_table(self, name: str, columns: Sequence[str] | None = None, *,
                   start: DateLike | None = None, end: DateLike | None = None,
                   symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Read a table (optionally a slice of it) into a DataFrame.

        Parameters
        ----------
        name : str
            Table name.
        columns : sequence of str, optional
            Columns to return, in this order (default: all, in table order).
        start, end : date-like, optional
            Keep rows with ``start <= date <= end`` (inclusive; needs a ``date`` column).
        symbols : iterable of str, optional
            Keep rows whose ``symbol`` is in this set (needs a ``symbol`` column).

        Returns
        -------
        DataFrame, shape (n_rows, n_columns)
            Rows ordered by (symbol, date) when the table has those columns, RangeIndex.
            dtypes restored: DATE/TIMESTAMP -> datetime64[ns], text -> str, REAL ->
            float32, DOUBLE -> float64, BIGINT -> int64 (float64 where NULLs occur).

        Raises
        ------
        StageError
            The table does not exist.
        ValueError
            Unknown column, or a date/symbol filter on a table without that column.
        """
        name = _check_name(name)
        schema = self._columns(name)
        if not schema:
            raise StageError(f"table {name!r} is not in the market store {self!r}")
        cols = list(schema) if columns is None else [str(c) for c in columns]
        unknown = [c for c in cols if c not in schema]
        if unknown:
            raise ValueError(f"table {name!r} has no column(s) {unknown}; it has {list(schema)}")
        symbols = None if symbols is None else sorted({str(s) for s in symbols})
        for need, used in (("date", start is not None or end is not None),
                           ("symbol", symbols is not None)):
            if used and need not in schema:
                raise ValueError(f"table {name!r} has no {need!r} column to filter on")
        conds: list[tuple[str, str, Any]] = []  # (column, operator, value)
        if start is not None:
            conds.append(("date", ">=", pd.Timestamp(start).to_pydatetime()))
        if end is not None:
            conds.append(("date", "<=", pd.Timestamp(end).to_pydatetime()))
        order = [c for c in ("symbol", "date") if c in schema]
        select = ", ".join(_q(c) for c in cols)
        order_sql = f" ORDER BY {', '.join(_q(c) for c in order)}" if order else ""
        types = {c: schema[c] for c in cols}

        if self._duck:
            where = [f"{_q(c)} {op} ?" for c, op, _ in conds]
            params: list[Any] = [v for _, _, v in conds]
            if symbols is not None:
                where.append(f"{_q('symbol')} IN (SELECT UNNEST(?::VARCHAR[]))")
                params.append(symbols)
            # No ORDER BY: DuckDB keeps insertion order (``preserve_insertion_order``) and its
            # sort of a wide table holds about one extra copy of it until the connection closes;
            # the rows are put in order below only when they are not already.
            in_frame = all(c in cols for c in order)  # else only SQL can order by them
            sql = f"SELECT {select} FROM {_q(name)}" + \
                (f" WHERE {' AND '.join(where)}" if where else "") + ("" if in_frame else order_sql)
            fairy = self.engine.raw_connection()
            try:
                duck: Any = fairy.driver_connection  # None only once the connection is invalidated
                table = duck.sql(sql, params=params).to_arrow_table()
            finally:
                fairy.close()
        else:
            from psycopg import sql as psql

            parts = [psql.SQL("{} " + op + " {}").format(psql.Identifier(c), psql.Literal(v))
                     for c, op, v in conds]
            if symbols is not None:
                parts.append(psql.SQL("{} = ANY({}::text[])").format(
                    psql.Identifier("symbol"), psql.Literal(symbols)))
            query: psql.SQL | psql.Composed = psql.SQL("SELECT " + select + " FROM " + _q(name))
            if parts:
                query = query + psql.SQL(" WHERE ") + psql.SQL(" AND ").join(parts)
            query = psql.SQL("COPY (") + query + psql.SQL(order_sql + ") TO STDOUT (FORMAT csv)")
            buf = io.BytesIO()
            fairy = self.engine.raw_connection()
            try:
                con: Any = fairy.driver_connection  # None only once the connection is invalidated
                with con.cursor() as cur, cur.copy(query) as copy:
                    for data in copy:
                        buf.write(data)
                con.rollback()
            finally:
                fairy.close()
            buf.seek(0)
            arrow_types = {c: _ARROW[t] for c, t in types.items()}
            if buf.getbuffer().nbytes == 0:
                table = pa.table({c: pa.array([], type=t) for c, t in arrow_types.items()})
            else:
                table = pacsv.read_csv(
                    buf,
                    read_options=pacsv.ReadOptions(column_names=cols, block_size=1 << 24),
                    convert_options=pacsv.ConvertOptions(
                        column_types=arrow_types, null_values=[""], strings_can_be_null=True,
                        quoted_strings_can_be_null=False, true_values=["t"],
                        false_values=["f"]),
                )
        frame = _to_pandas(table, types)
        del table
        if self._duck and order and all(c in cols for c in order):
            frame = _sorted_by(frame, order)
        return frame

    # -- public: market data ---------------------------------------------------------
    def write_prices(self, prices: pd.DataFrame) -> int:
        """Upsert the canonical prices frame by (symbol, date).

        The rows are loaded into a staging table; then, in one transaction, rows of the
        ``prices`` table with the same (symbol, date) are deleted and the new rows
        inserted. Writing the same frame twice leaves identical contents; a failure leaves
        the table unchanged.

        Parameters
        ----------
        prices : DataFrame, shape (n, 11)
            Output of :func:`vfr.data.adjust_prices` (columns
            :data:`vfr.data.adjust.PRICES_COLUMNS`; extra columns are ignored).

        Returns
        -------
        int
            Rows written (n).

        Raises
        ------
        DataValidationError
            Missing columns or duplicate (symbol, date) rows in ``prices``.
        """
        missing = [c for c in PRICES_COLUMNS if c not in prices.columns]
        if missing:
            raise DataValidationError(f"write_prices: missing column(s) {missing}",
                                      column=", ".join(missing))
        frame = prices[PRICES_COLUMNS]
        dup = frame.duplicated(["symbol", "date"]).to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise DataValidationError("write_prices: duplicate (symbol, date) "
                                      f"({frame['symbol'].iloc[i]!r}, {frame['date'].iloc[i]})",
                                      row=i + 1, column="date")
        table = _to_arrow(frame, PRICES_SCHEMA)
        name, stage = tables.PRICES, f"{_STAGE_PREFIX}{tables.PRICES}_{uuid.uuid4().hex[:8]}"
        key = ("symbol", "date")
        cols = ", ".join(_q(c) for c in PRICES_SCHEMA)
        with self._transaction() as con:
            con.execute(self._create_sql(name, PRICES_SCHEMA, if_not_exists=True, not_null=key,
                                         primary_key=() if self._duck else key))
            con.execute(self._create_sql(stage, PRICES_SCHEMA, temp=True, not_null=key))
            self._load(con, stage, table, list(PRICES_SCHEMA.values()))
            if not self._duck:
                con.execute(f"ANALYZE {_q(stage)}")
            match = " AND ".join(f"{_q(name)}.{_q(k)} = s.{_q(k)}" for k in key)
            con.execute(f"DELETE FROM {_q(name)} USING {_q(stage)} AS s WHERE {match}")
            con.execute(f"INSERT INTO {_q(name)} ({cols}) SELECT {cols} FROM {_q(stage)}")
            con.execute(f"DROP TABLE {_q(stage)}")
        return len(frame)

    def read_prices(self, symbols: Iterable[str] | None = None, start: DateLike | None = None,
                    end: DateLike | None = None,
                    columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read the canonical prices frame (optionally a slice).

        Parameters
        ----------
        symbols : iterable of str, optional
            Tickers to keep (default all).
        start, end : date-like, optional
            Inclusive date bounds.
        columns : sequence of str, optional
            Value columns to return after ``symbol, date`` (default all of
            :data:`vfr.data.adjust.PRICES_COLUMNS`).

        Returns
        -------
        DataFrame, shape (n_rows, 2 + n_columns)
            ``symbol`` (str), ``date`` (datetime64[ns]), float64 value columns; sorted by
            (symbol, date), RangeIndex.

        Raises
        ------
        StageError
            No prices have been ingested.
        ValueError
            Unknown column.
        """
        cols = PRICES_COLUMNS if columns is None else \
            ["symbol", "date"] + [c for c in columns if c not in ("symbol", "date")]
        return self.read_table(tables.PRICES, cols, start=start, end=end, symbols=symbols)

    def write_universe(self, universe: pd.DataFrame) -> int:
        """Replace the ``securities`` table with ``universe`` (symbol, name, sector).

        Parameters
        ----------
        universe : DataFrame, shape (n_symbols, >= 3)
            Output of :func:`vfr.data.read_universe`; extra columns are ignored.

        Returns
        -------
        int
            Rows written.

        Raises
        ------
        DataValidationError
            Missing columns or duplicate symbols.
        """
        missing = [c for c in UNIVERSE_COLUMNS if c not in universe.columns]
        if missing:
            raise DataValidationError(f"write_universe: missing column(s) {missing}",
                                      column=", ".join(missing))
        frame = universe[UNIVERSE_COLUMNS].astype("str")
        if frame["symbol"].duplicated().any():
            raise DataValidationError("write_universe: duplicate symbols", column="symbol")
        return self.replace_table(tables.SECURITIES, frame)

    def write_membership(self, intervals: pd.DataFrame) -> int:
        """Replace the point-in-time universe (``universe_membership``) with ``intervals``.

        Parameters
        ----------
        intervals : DataFrame, shape (n_intervals, 3)
            ``symbol, start_date, end_date`` (:func:`vfr.data.universe.clean_membership`).

        Returns
        -------
        int
            Rows written.
        """
        from vfr.data.universe import clean_membership

        return self.replace_table(tables.MEMBERSHIP, clean_membership(intervals))

    def read_membership(self) -> pd.DataFrame | None:
        """The point-in-time universe intervals, or None for a static universe (no table)."""
        if not self.has_table(tables.MEMBERSHIP):
            return None
        from vfr.data.universe import MEMBERSHIP_COLUMNS

        return self.read_table(tables.MEMBERSHIP, list(MEMBERSHIP_COLUMNS))

    def read_universe(self) -> pd.DataFrame:
        """The ``securities`` table: columns symbol, name, sector (str), sorted by symbol.

        Raises
        ------
        StageError
            No universe has been written.
        """
        return self.read_table(tables.SECURITIES, UNIVERSE_COLUMNS)


def is_sorted_by(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
    """Whether ``frame``'s rows are in ascending order of ``keys`` (ties allowed).

    Parameters
    ----------
    frame : DataFrame
    keys : sequence of str
        Columns, most significant first (e.g. ``["symbol", "date"]``).

    Returns
    -------
    bool
        True when sorting by ``keys`` (stably) would leave the rows where they are.
    """
    if len(frame) < 2:
        return True
    if not frame[keys[0]].is_monotonic_increasing:
        return False
    tie = np.ones(len(frame) - 1, dtype=bool)
    for prev, key in zip(keys, keys[1:], strict=False):
        p = frame[prev].to_numpy()
        tie &= p[1:] == p[:-1]
        v = frame[key].to_numpy()
        if not (v[1:][tie] >= v[:-1][tie]).all():
            return False
    return True


def _sorted_by(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``frame`` in the order of ``keys`` (stable), untouched when it already is."""
    if is_sorted_by(frame, keys):
        return frame
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _to_pandas(table: pa.Table, types: dict[str, str]) -> pd.DataFrame:
    """Arrow -> pandas with the dtypes of the logical ``types``."""
    df = table.to_pandas(date_as_object=False)
    for col, logical in types.items():
        target = _TYPES[logical][2]
        s = df[col]
        if target == "datetime64[ns]":
            df[col] = s.astype("datetime64[ns]")
        elif target == "str":
            df[col] = s.astype("str")
        elif logical in ("smallint", "integer", "bigint", "boolean") and s.isna().any():
            continue  # keep pandas' NULL-capable representation (float64 / object)
        elif str(s.dtype) != target:
            df[col] = s.astype(target)
    return df.reset_index(drop=True)
