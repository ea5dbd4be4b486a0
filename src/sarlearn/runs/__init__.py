"""One closed-loop run: the loop with its checkpoints (``run``), its output folder
(``outputs``), the checks before it starts (``preflight``), the live view (``live``) and the
replay of a recorded run (``replay``).

Nothing is imported here, so that the CLI and spawned workers stay cheap to start.
"""
