"""The kiln Python package against the kiln CLI: the same plugin, parameters
and state give the same bits from Python as `kiln fit` / `kiln run`.

Run by tests/python_pkg.rs (part of the README's test command), which puts
the native module that `cargo build --release --workspace` made on
PYTHONPATH and sets KILN_BIN (the kiln binary) and KILN_PLUGIN_DIR (the
built plugins). Input tables are written by pyarrow (an independent Arrow
implementation) as Parquet, which the CLI reads.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import kiln

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


def customers(rows, seed=7):
    """`rows` customers: ages with nulls, incomes with one NaN."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype("int64")
    income = rng.normal(50_000, 20_000, rows)
    income[min(3, rows - 1)] = np.nan
    age_mask = np.arange(rows) % 13 == 5
    return pa.table(
        {
            "customer_id": pa.array(np.arange(1000, 1000 + rows), pa.int64()),
            "age": pa.array(age, mask=age_mask),
            "income": pa.array(income),
        }
    )


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


@pytest.mark.parametrize("rows,row_group", [(500, 128), (150_000, 10_000)])
def test_fit_and_transform_are_bit_identical_to_the_cli(tmp_path, rows, row_group):
    table = customers(rows)
    data = tmp_path / "customers.parquet"
    pq.write_table(table, data, row_group_size=row_group)
    state = tmp_path / "scaler.state"
    params = json.dumps(SCALER_PARAMS)
    cli_ok("fit", SCALER, "--input", data, "--params", params, "--state-out", state)
    out = tmp_path / "out.arrow"
    cli_ok("run", SCALER, "--input", data, "--params", params, "--state", state, "--output", out)
    want = read_arrow(out)

    # pyarrow's own chunking (row groups) differs from kiln's batches: fit
    # re-chunks to kiln fit's 65,536 rows, so the state bytes are the same.
    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS).fit(pq.read_table(data))
    assert fitted.state == state.read_bytes()
    from_file = kiln.Plugin(SCALER, params=SCALER_PARAMS, state=state)
    assert from_file.version_id == fitted.version_id
    got = fitted.transform(table)
    assert isinstance(got, pa.Table)
    assert_same_bits(got, want)
    # Any batching gives the same rows (one fresh instance per batch), and
    # a RecordBatch or a RecordBatchReader is accepted as well.
    assert_same_bits(fitted.transform(pa.Table.from_batches(table.to_batches(max_chunksize=7))), want)
    assert_same_bits(fitted.transform(table.combine_chunks().to_batches()[0]), want)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert_same_bits(fitted.transform(reader), want)


def test_pandas_goes_through_pyarrow():
    table = customers(300)
    bucketize = kiln.Plugin(
        PLUGINS / "bucketize.wasm",
        params='{"columns": ["income"], "boundaries": [30000, 60000]}',
    )
    got = kiln.transform_pandas(bucketize, table.to_pandas())
    want = bucketize.transform(table).to_pandas()
    assert got.equals(want)
    assert set(got["income"].dropna().unique()) <= {0, 1, 2}


def test_errors_raise_kiln_error_with_the_cli_message(tmp_path):
    table = customers(50)
    data = tmp_path / "c.parquet"
    pq.write_table(table, data)
    params = {"columns": ["no_such_column"]}
    with pytest.raises(kiln.KilnError) as e:
        kiln.Plugin(SCALER, params=params).fit(table)
    out = cli("fit", SCALER, "--input", data, "--params", json.dumps(params), "--state-out", tmp_path / "s")
    assert out.returncode != 0
    assert "no_such_column" in str(e.value)
    assert str(e.value).splitlines()[0] in out.stderr, (str(e.value), out.stderr)
    with pytest.raises(kiln.KilnError, match="no_such.wasm"):
        kiln.Plugin(PLUGINS / "no_such.wasm")
    with pytest.raises(ValueError):
        kiln.Plugin(SCALER, params=SCALER_PARAMS).transform(42)
