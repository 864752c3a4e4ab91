"""Test kit of the imaging library, like numpy.testing; never imported by the runtime modules."""
