"""Many runs: the sweep spec and its plan (``spec``), the sweep driver (``sweep``), runs that
share a shape as one engine population (``population``) and the Ray executor
(``ray_backend``).

Nothing is imported here, so that ``sarlearn sweep`` and spawned workers stay cheap to start.
"""
