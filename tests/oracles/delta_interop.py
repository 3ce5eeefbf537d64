"""Independent writer and oracle for Kiln's feature tables.

Writes a Delta table with Python `deltalake` (delta-rs's Python binding,
not Kiln's writer), a spine, and the point-in-time join of the two computed
by `pandas.merge_asof` (by=entity, direction="backward", tolerance=TTL).

    python delta_interop.py OUT_DIR SEED TTL_SECONDS

OUT_DIR/table (Delta, two commits), OUT_DIR/spine.parquet,
OUT_DIR/expected.parquet (row_id, x, y as merge_asof joined them).
"""
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake

out, seed, ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
t0 = pd.Timestamp("2026-01-01T00:00:00Z")

n = 400
# Unique (entity, ts) pairs: merge_asof's tie rule is not Kiln's.
pairs = set()
while len(pairs) < n:
    pairs.add((int(rng.integers(0, 12)), int(rng.integers(0, 5 * 86400))))
pairs = sorted(pairs, key=lambda p: rng.random())
feats = pd.DataFrame(
    {
        "entity": pd.array([p[0] for p in pairs], dtype="int64"),
        "ts": [t0 + pd.Timedelta(seconds=p[1]) for p in pairs],
        "x": rng.normal(size=n),
        "y": rng.integers(-1000, 1000, size=n).astype("int64"),
    }
)
feats["ts"] = feats["ts"].astype("datetime64[us, UTC]")
half = n // 2
write_deltalake(f"{out}/table", feats.iloc[:half], mode="append")
write_deltalake(f"{out}/table", feats.iloc[half:], mode="append")

m = 300
spine = pd.DataFrame(
    {
        "row_id": np.arange(m, dtype="int64"),
        "entity": rng.integers(0, 14, size=m).astype("int64"),  # 12, 13: never in the table
        "ts": [t0 + pd.Timedelta(seconds=int(s)) for s in rng.integers(-3600, 6 * 86400, size=m)],
        "label": rng.integers(0, 2, size=m).astype("int64"),
    }
)
# Some spine rows exactly at a feature time: exact matches count (<=).
for i in range(0, m, 10):
    j = int(rng.integers(0, n))
    spine.loc[i, "entity"] = feats.loc[j, "entity"]
    spine.loc[i, "ts"] = feats.loc[j, "ts"]
spine["ts"] = spine["ts"].astype("datetime64[us, UTC]")
spine.to_parquet(f"{out}/spine.parquet", index=False)

joined = pd.merge_asof(
    spine.sort_values("ts"),
    feats.sort_values("ts"),
    on="ts",
    by="entity",
    direction="backward",
    tolerance=pd.Timedelta(seconds=ttl),
    allow_exact_matches=True,
).sort_values("row_id")
expected = pa.table(
    {
        "row_id": pa.array(joined["row_id"].to_numpy(), pa.int64()),
        "x": pa.array(joined["x"].to_numpy(), pa.float64(), from_pandas=True),
        "y": pa.array(joined["y"].astype("Int64").to_numpy(dtype="float64", na_value=np.nan)),
    }
)
import pyarrow.parquet as pq

pq.write_table(expected, f"{out}/expected.parquet")
print(f"wrote {n} feature rows in 2 commits, {m} spine rows")
