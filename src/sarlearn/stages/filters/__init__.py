"""The filter bank stage: each predictor expanded in time (``bank``: resonators, ICO
resonators, delay lines) and its compiled step (``compiled``)."""
