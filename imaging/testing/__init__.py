"""Test kit of imaging (synthetic photos, skin edits, validation study); no runtime module imports it."""
