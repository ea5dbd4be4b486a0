"""The perception stage: camera frame -> darkness -> segment grid -> predictors
(``perception``; the one path for the simulator, a replayed run and the Pi camera) and its
compiled twin (``compiled``)."""
