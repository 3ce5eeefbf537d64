"""Independent oracle for kiln-temporal's as-of join: pandas.merge_asof.

    python asof_oracle.py SPINE.parquet FEATURES.parquet SETTINGS.json OUT.parquet

SPINE has row_id, entity, shard, ts; FEATURES has feat_id, entity, shard, ts
(time columns of any unit and zone; no two feature rows share entity, shard
and ts, since merge_asof's tie rule is not Kiln's). SETTINGS is a JSON list
of {"ttl_us": int or null, "allow_exact": bool}. OUT gets row_id and, for
setting i, m{i}: the feat_id merge_asof matched (null when none), in the
spine's original row order.
"""
import json
import sys

import numpy as np
import pandas as pd


def micros(ts: pd.Series) -> pd.Series:
    """Any datetime column as naive UTC datetime64[us]."""
    ts = pd.to_datetime(ts)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[us]")


spine_path, features_path, settings_path, out_path = sys.argv[1:5]
spine = pd.read_parquet(spine_path)
feats = pd.read_parquet(features_path)
with open(settings_path) as f:
    settings = json.load(f)

spine["ts"] = micros(spine["ts"])
feats["ts"] = micros(feats["ts"])
assert not feats.duplicated(["entity", "shard", "ts"]).any(), "ties in the features"
assert (spine["row_id"].to_numpy() == np.arange(len(spine))).all()

left = spine.sort_values("ts", kind="stable")
right = feats.sort_values("ts", kind="stable")
out = pd.DataFrame({"row_id": np.arange(len(spine), dtype="int64")})
for i, s in enumerate(settings):
    ttl = s["ttl_us"]
    merged = pd.merge_asof(
        left,
        right,
        on="ts",
        by=["entity", "shard"],
        direction="backward",
        tolerance=None if ttl is None else pd.Timedelta(ttl, unit="us"),
        allow_exact_matches=s["allow_exact"],
    )
    matched = merged.set_index("row_id")["feat_id"].reindex(out["row_id"])
    out[f"m{i}"] = matched.astype("Int64").array

out.to_parquet(out_path, index=False)
