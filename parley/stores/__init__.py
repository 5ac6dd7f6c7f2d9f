"""Implementations of the core's interfaces: in-process (``memory``), Redis and SQL."""
