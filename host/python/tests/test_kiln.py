"""The kiln Python package against the kiln CLI: the same plugin, parameters
and state give the same bits from Python as `kiln fit` / `kiln run`.

Run by tests/python_pkg.rs (part of the README's test command), which puts
the native module `cargo test` built on PYTHONPATH and sets KILN_BIN (the kiln binary) and KILN_PLUGIN_DIR (the
built plugins). Input tables are written by pyarrow (an independent Arrow
implementation) as Parquet, which the CLI reads.
"""

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kiln

from kiln_testing import (
    PLUGINS,
    SCALER,
    SCALER_PARAMS,
    assert_same_bits,
    cli,
    cli_fit_and_run,
    cli_ok,
    customers,
    read_arrow,
)


@pytest.mark.parametrize("rows,row_group", [(500, 128), (150_000, 10_000)])
def test_fit_and_transform_are_bit_identical_to_the_cli(tmp_path, rows, row_group):
    table = customers(rows)
    data, state, want = cli_fit_and_run(tmp_path, table, row_group_size=row_group)

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


def test_load_applies_the_stores_masks_and_pickles_with_them(tmp_path):
    """kiln.load gives kiln run NAME@TAG's bits, masks included, and a
    pickled plugin (what PySpark and Ray workers get) gives the same."""
    table = customers(400, email=True)
    data = tmp_path / "c.parquet"
    pq.write_table(table, data, row_group_size=100)
    store = tmp_path / "store"
    params = json.dumps(SCALER_PARAMS)
    cli_ok("fit", SCALER, "--input", data, "--params", params, "--name", "customers", "--tag", "prod", "--store", store)
    cli_ok("access", "mask", "customers", "email", "--sensitivity", "pii", "--with", "hash", "--store", store)
    cli_ok("access", "mask", "customers", "customer_id", "--sensitivity", "pii", "--with", "bucketize:10", "--store", store)
    out = tmp_path / "out.arrow"
    cli_ok("run", "customers@prod", "--input", data, "--output", out, "--store", store)
    want = read_arrow(out)
    # The masks bite: hashed emails and ids rounded down to tens.
    assert want.column("email")[0].as_py() != table.column("email")[0].as_py()
    assert len(want.column("email")[0].as_py()) == 32
    assert all(v % 10 == 0 for v in want.column("customer_id").to_pylist())

    prod = kiln.load("customers@prod", store=store)
    got = prod.transform(table)
    assert_same_bits(got, want)
    assert prod.output_schema(table.schema) == got.schema

    again = pickle.loads(pickle.dumps(prod))
    assert again.version_id == prod.version_id
    assert_same_bits(again.transform(table), want)
    # The unfitted plugin pickles too (no state, no masks).
    plain = pickle.loads(pickle.dumps(kiln.Plugin(SCALER, params=SCALER_PARAMS)))
    assert plain.state is None and plain.params == kiln.Plugin(SCALER, params=SCALER_PARAMS).params

    with pytest.raises(kiln.KilnError, match="no_such"):
        kiln.load("no_such@prod", store=store)


def test_an_altered_pickle_is_refused():
    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS).fit(customers(100))
    restore, args = fitted.__reduce__()
    args = list(args)
    args[1] = json.dumps({"columns": ["age"]})  # other parameters, same claimed version
    with pytest.raises(kiln.KilnError, match="altered"):
        restore(*args)


def test_the_sklearn_benchmark_runs_and_agrees():
    """The benchmark (host/python/bench) checks Kiln against scikit-learn
    before it prints; run it small so it keeps working (no timing here)."""
    pytest.importorskip("sklearn", reason="pip install scikit-learn")
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "bench" / "sklearn_vs_kiln.py"
    out = subprocess.run(
        [sys.executable, script, "--plugin", SCALER, "--rows", "20000", "--repeat", "1", "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["rows"] == 20000 and result["total_ratio"] > 0


def test_polars_and_duckdb_cross_by_the_arrow_c_stream():
    """Anything exporting __arrow_c_stream__ is input: a polars DataFrame
    and a DuckDB relation give the bits a pyarrow table does. polars hands
    strings over as Utf8View, which is read as Utf8 (the same values)."""
    pl = pytest.importorskip("polars", reason="pip install polars")
    duckdb = pytest.importorskip("duckdb", reason="pip install duckdb")
    table = customers(3_000, email=True)
    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS).fit(table)
    want = fitted.transform(table)
    frame = pl.from_arrow(table)
    assert not isinstance(frame, pa.Table) and hasattr(frame, "__arrow_c_stream__")
    assert pa.table(frame).schema.field("email").type == pa.string_view()
    assert_same_bits(fitted.transform(frame), want)
    assert fitted.fit(frame).state == fitted.state
    con = duckdb.connect()
    con.register("customers", table)
    rel = con.sql("SELECT * FROM customers ORDER BY customer_id")
    assert hasattr(rel, "__arrow_c_stream__")
    assert_same_bits(fitted.transform(rel), want)
