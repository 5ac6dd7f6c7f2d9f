"""The dialogue core: sans-IO and channel-blind.

Nothing here imports Flask, a platform SDK, Redis or SQL; ``tests/unit/test_core_is_sans_io.py``
walks the imports to keep it so. The core reaches the world only through the small interfaces in
``sessions``, ``engine``, ``inbox`` and ``log``.
"""
