"""The ``liftgate`` command line: thin handlers over the library."""
