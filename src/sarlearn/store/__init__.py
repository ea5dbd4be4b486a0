"""The results store of a sweep: a part file per unit of work, compacted into
``results.parquet`` and ``traces.parquet`` (``store``)."""
