"""Kiln from Python: the same pinned WebAssembly feature transforms as the
``kiln`` CLI, over Arrow data, bit for bit.

    import kiln, pyarrow.parquet as pq
    table = pq.read_table("customers.parquet")
    scaler = kiln.Plugin("standard_scaler.wasm", params={"columns": ["age", "income"]})
    fitted = scaler.fit(table)              # the state `kiln fit` writes
    features = fitted.transform(table)      # a pyarrow.Table, as `kiln run` writes

    prod = kiln.load("scaler@prod", store=".kiln")   # a version from the store

Inputs are anything with ``__arrow_c_stream__`` or ``__arrow_c_array__``
(pyarrow Tables and RecordBatches, polars DataFrames, DuckDB results); a
pandas DataFrame goes through ``pyarrow.Table.from_pandas``. Errors raise
``kiln.KilnError`` with the CLI's message.
"""

from ._kiln import KilnError, Plugin, WIT_VERSION, load

__all__ = ["KilnError", "Plugin", "WIT_VERSION", "load", "transform_pandas"]


def transform_pandas(plugin, df):
    """Apply ``plugin`` to a pandas DataFrame and return a pandas DataFrame."""
    import pyarrow as pa

    return plugin.transform(pa.Table.from_pandas(df, preserve_index=False)).to_pandas()
