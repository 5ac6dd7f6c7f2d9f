"""The Flask side: the app factory, one blueprint per channel path, health and error handling."""
