"""kiln.spark against the kiln CLI: a plugin applied to a Spark DataFrame
with mapInArrow, in local mode (a JVM, two Python workers), gives the bits
`kiln run` writes for the same rows, whatever the partitioning and Arrow
batch size, with the store's column masks when loaded by name.

Needs pip's pyspark and a Java 17+ runtime (Debian's
openjdk-17-jre-headless; .ci/run installs both).
"""

import json
import os
import shutil
import sys

import pytest

import kiln
import kiln.spark
from kiln_testing import (
    SCALER,
    SCALER_PARAMS,
    assert_same_bits,
    cli_fit_and_run,
    cli_ok,
    customers,
    read_arrow,
)

pyspark = pytest.importorskip("pyspark", reason="pip install pyspark")
if shutil.which("java") is None:
    pytest.skip("no java: apt-get install openjdk-17-jre-headless", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # The workers run this Python (with pyarrow and kiln on its path).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("kiln-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "3")
        # Small Arrow batches: many plugin calls per partition.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "700")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_map_in_arrow_gives_kiln_runs_bits(spark, tmp_path):
    table = customers(5_000, email=True)
    data, state, want = cli_fit_and_run(tmp_path, table, row_group_size=1_000)
    want = want.sort_by("customer_id")

    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS, state=state)
    df = spark.read.parquet(str(data)).repartition(3)
    assert df.rdd.getNumPartitions() == 3
    result = kiln.spark.transform(df, fitted)
    assert result.schema == kiln.spark.output_schema(df, fitted)
    got = result.toArrow().sort_by("customer_id")
    assert got.num_rows == 5_000
    assert_same_bits(got, want)

    # A version from the store by name: the workers apply its masks too.
    params = json.dumps(SCALER_PARAMS)
    store = tmp_path / "store"
    cli_ok("fit", SCALER, "--input", data, "--params", params, "--name", "customers", "--tag", "prod", "--store", store)
    cli_ok("access", "mask", "customers", "email", "--sensitivity", "pii", "--with", "hash", "--store", store)
    masked_out = tmp_path / "masked.arrow"
    cli_ok("run", "customers@prod", "--input", data, "--output", masked_out, "--store", store)
    masked_want = read_arrow(masked_out).sort_by("customer_id")
    prod = kiln.load("customers@prod", store=store)
    masked_got = kiln.spark.transform(df, prod).toArrow().sort_by("customer_id")
    assert masked_got.column("email") != got.column("email")
    assert_same_bits(masked_got, masked_want)


def test_a_plugin_error_is_raised_on_the_driver_before_any_task(spark, tmp_path):
    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS).fit(customers(100))
    df = spark.createDataFrame(customers(100).drop_columns(["income"]).to_pandas())
    with pytest.raises(kiln.KilnError, match="income"):
        kiln.spark.transform(df, fitted)
