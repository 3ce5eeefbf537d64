"""Independent oracle for kiln-temporal's windows: pandas groupby-rolling.

    python window_oracle.py EVENTS.parquet SPECS.json OUT.parquet

EVENTS has entity, ts (any unit and zone) and the value columns (no null
entity or time). SPECS is a JSON list of {"column": str, "aggregations":
[str], "windows": [[name, length_us]]}. For each spec, window and
aggregation, OUT gets the column {column}_{agg}_{name}: the aggregate over
the same entity's values with ts in [t - length, t) (pandas' closed="left"),
in the events' original row order. Empty windows: count and sum 0, the rest
NaN (min_periods=0). Nulls are skipped, as pandas skips NaN.
"""
import json
import sys

import numpy as np
import pandas as pd

events_path, specs_path, out_path = sys.argv[1:4]
df = pd.read_parquet(events_path)
with open(specs_path) as f:
    specs = json.load(f)

ts = pd.to_datetime(df["ts"])
if ts.dt.tz is not None:
    ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
df["ts"] = ts.astype("datetime64[us]")
df["row_id"] = np.arange(len(df))
# A time-based rolling window needs time order within each entity.
d = df.sort_values(["entity", "ts"], kind="stable").reset_index(drop=True)

out = {}
for spec in specs:
    col = spec["column"]
    d[col] = d[col].astype("float64")  # nulls become NaN, which rolling skips
    for name, length_us in spec["windows"]:
        rolling = d.groupby("entity", sort=True).rolling(
            pd.Timedelta(length_us, unit="us"), on="ts", closed="left", min_periods=0
        )[col]
        for agg in spec["aggregations"]:
            result = getattr(rolling, agg)()
            # The result is indexed (entity, ts) in group order: d's order.
            assert (result.index.get_level_values(0) == d["entity"].to_numpy()).all()
            assert (result.index.get_level_values(1) == d["ts"].to_numpy()).all()
            values = np.empty(len(d))
            values[d["row_id"].to_numpy()] = result.to_numpy(dtype="float64")
            out[f"{col}_{agg}_{name}"] = values

pd.DataFrame(out).to_parquet(out_path, index=False)
