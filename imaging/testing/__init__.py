"""Test kit of the imaging library (real-face set, synthetic photos, skin edits, validation study), like
numpy.testing; no runtime module imports it."""
