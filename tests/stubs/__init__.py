"""Loopback stand-ins for the platform APIs: real HTTP servers on a thread that record requests."""
