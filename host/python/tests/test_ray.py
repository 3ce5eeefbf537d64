"""kiln.ray against the kiln CLI: a plugin applied to a Ray Dataset with
map_batches(batch_format="pyarrow") on a local Ray cluster (worker
processes, the plugin pickled to them) gives the bits `kiln run` writes.

Needs pip's ray[data] (.ci/run installs it).
"""

import pyarrow as pa
import pytest

import kiln
import kiln.ray
from kiln_testing import SCALER, SCALER_PARAMS, assert_same_bits, cli_fit_and_run, customers

ray = pytest.importorskip("ray", reason='pip install "ray[data]"')


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_map_batches_gives_kiln_runs_bits(cluster, tmp_path):
    table = customers(4_000)
    data, state, want = cli_fit_and_run(tmp_path, table, row_group_size=1_000)
    want = want.sort_by("customer_id")

    fitted = kiln.Plugin(SCALER, params=SCALER_PARAMS, state=state)
    ds = ray.data.from_arrow(table).repartition(4)
    result = kiln.ray.transform(ds, fitted, batch_size=300)
    got = pa.concat_tables(ray.get(result.to_arrow_refs())).sort_by("customer_id")
    assert got.num_rows == 4_000
    assert_same_bits(got, want)
