"""Adapters that serve the dispatch: ``tornado_server`` (real HTTP; the only Tornado import) and
``transport`` (an in-process ``requests`` adapter). Import the one you need; this package imports neither."""
