"""kiln.ray against the kiln CLI: a plugin applied to a Ray Dataset with
map_batches(batch_format="pyarrow") on a local Ray cluster (worker
processes, the plugin pickled to them) gives the bits `kiln run` writes.

Needs pip's ray[data] (.ci/run installs it).
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kiln
import kiln.ray
from kiln_testing import SCALER, SCALER_PARAMS, assert_same_bits, cli_ok, customers, read_arrow

ray = pytest.importorskip("ray", reason='pip install "ray[data]"')


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_map_batches_gives_kiln_runs_bits(cluster, tmp_path):
    table = customers(4_000)
    data = tmp_path / "c.parquet"
    pq.write_table(table, data, row_group_size=1_000)
    params = json.dumps(SCALER_PARAMS)
    state = tmp_path / "scaler.state"
    cli_ok("fit", SCALER, "--input", data, "--params", params, "--state-out", state)
    out = tmp_path / "out.arrow"
    cli_ok("run", SCALER, "--input", data, "--params", params, "--state", state, "--output", out)
    want = read_arrow(out).sort_by("customer_id")

    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS, state=state)
    ds = ray.data.from_arrow(table).repartition(4)
    result = kiln.ray.transform(ds, fitted, batch_size=300)
    got = pa.concat_tables(ray.get(result.to_arrow_refs())).sort_by("customer_id")
    assert got.num_rows == 4_000
    assert_same_bits(got, want)
