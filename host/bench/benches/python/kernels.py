"""The kernels of `kiln bench` in pandas / scikit-learn / numpy.

Run by `kiln bench` (it pipes this file to `python3 -`) when python3 can
import sklearn, pandas and pyarrow. By hand:

    python3 host/bench/benches/python/kernels.py DATA.arrow \
        '{"mean": 50.0, "std": 28.867513459481287, "buckets": 1024,
          "boundaries": [10,20,30,40,50,60,70,80,90], "repeats": 5}'

DATA.arrow is the Arrow IPC file `kiln bench` writes: a float64 column `x`
and a utf8 column `s`. Reading it and converting it to numpy / Python
objects is not timed; each kernel is timed `repeats` times and the median
is printed as JSON on stdout, with a checksum of the output so that `kiln
bench` can check the same thing was computed.
"""

import json
import statistics
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from sklearn.preprocessing import StandardScaler
from sklearn.utils import murmurhash3_32


def median_ms(fn, repeats):
    times = []
    out = None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def main():
    path, params = sys.argv[1], json.loads(sys.argv[2])
    repeats = int(params.get("repeats", 5))
    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all()
    x = table.column("x").to_numpy()
    X = x.reshape(-1, 1)
    strings = table.column("s").to_pylist()
    n = len(x)

    # standard-scaler: scikit-learn's StandardScaler.transform with the
    # state Kiln uses (mean 50, std 100/sqrt(12)), so outputs are equal.
    scaler = StandardScaler().fit(X[: min(n, 1000)])
    scaler.mean_ = np.array([params["mean"]])
    scaler.scale_ = np.array([params["std"]])
    scaler.var_ = scaler.scale_**2
    scaler_ms, scaled = median_ms(lambda: scaler.transform(X), repeats)

    # hash-encode: a Python loop over scikit-learn's murmurhash3_32.
    buckets = int(params["buckets"])
    hash_repeats = repeats if n <= 1_000_000 else 1
    hash_ms, hashed = median_ms(
        lambda: [murmurhash3_32(s, seed=0, positive=True) % buckets for s in strings],
        hash_repeats,
    )

    # bucketize: numpy.digitize (right=False), the vectorized form; pandas.cut
    # (right=False) is timed too for reference.
    bounds = np.asarray(params["boundaries"], dtype=np.float64)
    digitize_ms, binned = median_ms(lambda: np.digitize(x, bounds, right=False), repeats)
    edges = np.concatenate(([-np.inf], bounds, [np.inf]))
    cut_ms, _ = median_ms(
        lambda: pd.cut(pd.Series(x), edges, right=False, labels=False), repeats
    )

    print(
        json.dumps(
            {
                "rows": n,
                "versions": {
                    "python": sys.version.split()[0],
                    "numpy": np.__version__,
                    "pandas": pd.__version__,
                    "scikit-learn": sklearn.__version__,
                    "pyarrow": pa.__version__,
                },
                "kernels": {
                    "standard-scaler": {
                        "ms": scaler_ms,
                        "impl": "sklearn StandardScaler.transform",
                        "checksum": float(np.sum(scaled)),
                    },
                    "hash-encode": {
                        "ms": hash_ms,
                        "impl": "python loop over sklearn murmurhash3_32",
                        "checksum": float(sum(hashed)),
                    },
                    "bucketize": {
                        "ms": digitize_ms,
                        "impl": "numpy.digitize",
                        "checksum": float(np.sum(binned)),
                        "pandas_cut_ms": cut_ms,
                    },
                },
            }
        )
    )


if __name__ == "__main__":
    main()
