"""Reports: figures of a run (``figures``), tables and figures of a sweep (``report``) and the
self-contained ``report.html`` (``html``)."""
