"""Version of the measurement algorithm.

Rule: any change that can change a reported number - a measure's formula, a fixed constant
(quantisation bins, chromophore vectors, thresholds), colour normalisation or region placement -
bumps ``ALGORITHM_VERSION``, so stored results are only compared within one version.
Format: ``YEAR.MONTH.SERIAL``.
"""

ALGORITHM_VERSION = "2026.12.10"
