"""The motor stage: reflex error, readout and steering command -> wheel speeds (``motor``)
and its compiled twin (``compiled``)."""
