"""Kiln from Python vs scikit-learn: the standard scaler on the same
in-memory table (default 1,000,000 rows, two float64 columns), timed side by
side in one process, best of --repeat runs each. Prints the ratios
(scikit-learn's time / Kiln's: above 1 means Kiln is faster) and, with
--json, one JSON object under stable keys.

    python host/python/bench/sklearn_vs_kiln.py --plugin target/wasm/wasm32-wasip2/plugin/standard_scaler.wasm

Both sides do the whole job a user does with a pyarrow table in hand:
  fit        learn mean and standard deviation of the columns;
  transform  scale them and hand back a pyarrow table (scikit-learn: via
             numpy arrays, then pa.table; Kiln: the plugin's Arrow output).
It also times scikit-learn's transform alone on an array already in its
layout (no conversions), the floor a numpy-native pipeline pays.
The two results are checked to agree (relative 1e-12) before anything is
printed, so a fast wrong answer cannot win.
"""

import argparse
import json
import sys
import time

import numpy as np
import pyarrow as pa

import kiln


def table_of(rows, seed=11):
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "age": pa.array(rng.integers(18, 90, rows).astype("float64")),
            "income": pa.array(rng.normal(50_000, 20_000, rows)),
        }
    )


def best(f, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin", required=True, help="standard_scaler.wasm")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()

    from sklearn.preprocessing import StandardScaler

    cols = ["age", "income"]
    table = table_of(args.rows)
    plugin = kiln.Plugin(args.plugin, params={"columns": cols})

    def sk_fit():
        x = np.column_stack([table.column(c).to_numpy() for c in cols])
        return StandardScaler().fit(x)

    def sk_transform(scaler):
        x = np.column_stack([table.column(c).to_numpy() for c in cols])
        y = scaler.transform(x)
        return pa.table({c: y[:, i] for i, c in enumerate(cols)})

    t_sk_fit, scaler = best(sk_fit, args.repeat)
    t_sk_tr, sk_out = best(lambda: sk_transform(scaler), args.repeat)
    # scikit-learn's kernel alone, on an array already in its layout (the
    # pyarrow <-> numpy conversions above not counted): its floor.
    x = np.column_stack([table.column(c).to_numpy() for c in cols])
    t_sk_kernel, _ = best(lambda: scaler.transform(x), args.repeat)
    t_k_fit, fitted = best(lambda: plugin.fit(table), args.repeat)
    t_k_tr, k_out = best(lambda: fitted.transform(table), args.repeat)

    for c in cols:
        a = k_out.column(c).to_numpy()
        b = sk_out.column(c).to_numpy()
        if not np.allclose(a, b, rtol=1e-12, atol=1e-12):
            sys.exit(f"kiln and scikit-learn disagree on {c}: max diff {np.max(np.abs(a - b))}")

    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "sklearn_fit_s": t_sk_fit,
        "sklearn_transform_s": t_sk_tr,
        "kiln_fit_s": t_k_fit,
        "kiln_transform_s": t_k_tr,
        "fit_ratio": t_sk_fit / t_k_fit,
        "transform_ratio": t_sk_tr / t_k_tr,
        "sklearn_transform_kernel_s": t_sk_kernel,
        "transform_kernel_ratio": t_sk_kernel / t_k_tr,
        "total_ratio": (t_sk_fit + t_sk_tr) / (t_k_fit + t_k_tr),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"standard scaler, {args.rows:,} rows x 2 float64 columns, best of {args.repeat}")
    print(f"{'':12}{'scikit-learn':>14}{'kiln':>10}{'sklearn/kiln':>14}")
    print(f"{'fit':12}{t_sk_fit * 1e3:>11.1f} ms{t_k_fit * 1e3:>7.1f} ms{result['fit_ratio']:>13.2f}x")
    print(f"{'transform':12}{t_sk_tr * 1e3:>11.1f} ms{t_k_tr * 1e3:>7.1f} ms{result['transform_ratio']:>13.2f}x")
    t_sk, t_k = t_sk_fit + t_sk_tr, t_k_fit + t_k_tr
    print(f"{'total':12}{t_sk * 1e3:>11.1f} ms{t_k * 1e3:>7.1f} ms{result['total_ratio']:>13.2f}x")
    print(
        f"{'transform, numpy in/out only':30}{t_sk_kernel * 1e3:>7.1f} ms"
        f"{result['transform_kernel_ratio']:>8.2f}x  (scikit-learn on a prepared array)"
    )
    print("(above 1x: Kiln is faster)")


if __name__ == "__main__":
    main()
