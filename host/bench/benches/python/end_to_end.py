"""The end-to-end job of `kiln bench` in pyarrow + scikit-learn, in-process.

Run by `kiln bench` (piped to `python3 -`) beside `kiln run` as a whole
process on the same Parquet file: read it, scale column `x` with
scikit-learn's StandardScaler (the mean and std Kiln's state holds), write
the result as Parquet. Interpreter start-up and imports are not timed;
reading, transforming and writing are. By hand:

    python3 host/bench/benches/python/end_to_end.py IN.parquet OUT.parquet \
        '{"mean": 50.0, "std": 28.867513459481287, "repeats": 5}'

Prints the median time as JSON on stdout.
"""

import json
import statistics
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sklearn
from sklearn.preprocessing import StandardScaler


def main():
    src, dst, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    repeats = int(params.get("repeats", 5))
    scaler = StandardScaler()
    scaler.mean_ = np.array([params["mean"]])
    scaler.scale_ = np.array([params["std"]])
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = 1
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        table = pq.read_table(src)
        x = table.column("x").to_numpy().reshape(-1, 1)
        y = scaler.transform(x).reshape(-1)
        out = table.set_column(table.schema.get_field_index("x"), "x", pa.array(y))
        pq.write_table(out, dst)
        times.append((time.perf_counter() - t0) * 1e3)
    print(
        json.dumps(
            {
                "ms": statistics.median(times),
                "rows": table.num_rows,
                "impl": f"pyarrow {pa.__version__} read_table/write_table, scikit-learn {sklearn.__version__} StandardScaler.transform",
            }
        )
    )


if __name__ == "__main__":
    main()
