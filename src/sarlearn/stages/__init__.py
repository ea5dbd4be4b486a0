"""The stages of the closed loop, one folder each, in data-flow order.

world -> sensors (``world``) -> perception -> filter bank (``filters``) -> network ->
motor command (``motor``) -> world; the error -> sign + relevance -> plasticity (``rules``).

Each folder holds the readable numpy reference and its compiled twin (``compiled*.py``, numba),
which compiles the reference's own formula functions where it can; ``tests/test_engine_stages.py``
and the per-stage engine tests compare the two. Nothing is imported here: import the module
you need (``from sarlearn.stages.network.network import Network``).
"""
