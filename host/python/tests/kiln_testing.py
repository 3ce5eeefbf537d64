"""Shared by the kiln package's tests: the CLI, data written by pyarrow, and
bit-for-bit comparison of Arrow tables (float bit patterns, nulls, NaN).

KILN_BIN (the kiln binary) and KILN_PLUGIN_DIR (the built plugins) are set
by tests/python_pkg.rs.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

KILN = os.environ["KILN_BIN"]
PLUGINS = Path(os.environ["KILN_PLUGIN_DIR"])
SCALER = PLUGINS / "standard_scaler.wasm"
SCALER_PARAMS = {"columns": ["age", "income"]}


def cli(*args):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, env=env)


def cli_ok(*args):
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def read_arrow(path):
    with ipc.open_file(path) as f:
        return f.read_all()


def customers(rows, seed=7, email=False):
    """`rows` customers: ages with nulls, incomes with one NaN (and emails)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype("int64")
    income = rng.normal(50_000, 20_000, rows)
    income[min(3, rows - 1)] = np.nan
    age_mask = np.arange(rows) % 13 == 5
    columns = {
        "customer_id": pa.array(np.arange(1000, 1000 + rows), pa.int64()),
        "age": pa.array(age, mask=age_mask),
        "income": pa.array(income),
    }
    if email:
        columns["email"] = pa.array([f"user{i}@example.org" for i in range(rows)])
    return pa.table(columns)


def bits(col):
    """A column's values as bit patterns (floats) or values, with nulls."""
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_float64(a.type):
        v = a.fill_null(0.0).to_numpy(zero_copy_only=False).view("u8")
        return [None if a[i].as_py() is None else int(v[i]) for i in range(len(a))]
    return a.to_pylist()


def assert_same_bits(got: pa.Table, want: pa.Table):
    assert got.schema.names == want.schema.names
    assert got.schema.types == want.schema.types
    for name in want.column_names:
        assert bits(got.column(name)) == bits(want.column(name)), name


def cli_fit_and_run(tmp_path, table, row_group_size, params=None):
    """Write `table` as Parquet with pyarrow, fit the scaler on it and run it
    with the CLI. Returns (data path, state path, kiln run's output table)."""
    data = tmp_path / "customers.parquet"
    pq.write_table(table, data, row_group_size=row_group_size)
    params = json.dumps(params or SCALER_PARAMS)
    state = tmp_path / "scaler.state"
    cli_ok("fit", SCALER, "--input", data, "--params", params, "--state-out", state)
    out = tmp_path / "out.arrow"
    cli_ok("run", SCALER, "--input", data, "--params", params, "--state", state, "--output", out)
    return data, state, read_arrow(out)
