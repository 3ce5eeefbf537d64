"""Kiln on Ray Data: apply a pinned plugin version to a ``ray.data.Dataset``
with ``map_batches(batch_format="pyarrow")``, bit for bit what ``kiln run``
writes for the same rows.

    import kiln, kiln.ray
    features = kiln.ray.transform(ds, kiln.load("scaler@prod", store=".kiln"))

As with PySpark (``kiln.spark``), the plugin is pickled to the workers with
its bytes, parameters, state and masks, checked against its version id, and
each batch runs in a fresh sandboxed instance, so batch boundaries do not
change the result.
"""

__all__ = ["transform"]


def transform(ds, plugin, **map_batches_args):
    """Apply ``plugin`` to every row of ``ds``; extra keyword arguments go to
    ``Dataset.map_batches`` (``batch_size``, ``concurrency``, ...)."""

    def run(table):
        return plugin.transform(table)

    return ds.map_batches(run, batch_format="pyarrow", **map_batches_args)
