"""The ``dtgan`` command line: a thin argparse layer over the library."""
