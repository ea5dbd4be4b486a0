"""The network stage: activations, initialisation, the population of layered nets
(``network.Network``) and its compiled forward pass (``compiled``)."""
