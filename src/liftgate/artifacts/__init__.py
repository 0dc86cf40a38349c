"""Artifacts: the versioned backup contract, the content-addressed blob store, retention."""
