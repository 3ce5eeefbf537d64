"""Kiln on PySpark: apply a pinned plugin version to a Spark DataFrame with
``DataFrame.mapInArrow``, bit for bit what ``kiln run`` writes for the same
rows.

    import kiln, kiln.spark
    scaler = kiln.load("scaler@prod", store=".kiln")   # or kiln.Plugin(path, params, state)
    features = kiln.spark.transform(df, scaler)        # a Spark DataFrame

The plugin travels to the executors' Python workers pickled: its component
bytes, parameters, fitted state and column masks, checked against its
version id when unpickled. Each worker process compiles a plugin once and
runs every Arrow batch Spark hands it in a fresh sandboxed instance, so the
result does not depend on partitioning or on
``spark.sql.execution.arrow.maxRecordsPerBatch``.

Workers need the ``kiln`` package importable (installed in their Python, or
on ``PYTHONPATH``, which local mode inherits). Fitting is not distributed
here: fit on the driver (``plugin.fit(df.toArrow())``) or with ``kiln fit``.
"""

__all__ = ["transform", "output_schema"]


def output_schema(df, plugin):
    """The Spark schema ``transform(df, plugin)`` returns, computed by the
    plugin on the driver without running it on any rows."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    arrow_in = to_arrow_schema(df.schema)
    return from_arrow_schema(plugin.output_schema(arrow_in))


def transform(df, plugin):
    """Apply ``plugin`` (a ``kiln.Plugin``) to every row of ``df`` (a
    ``pyspark.sql.DataFrame``) and return the plugin's output as a Spark
    DataFrame, computed on the executors with ``mapInArrow``."""
    schema = output_schema(df, plugin)

    def run(batches):
        for batch in batches:
            if batch.num_rows == 0:
                continue
            yield from plugin.transform(batch).to_batches()

    return df.mapInArrow(run, schema)
