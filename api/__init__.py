"""The dialer's front: the `dialer` command line, settings, the embedded Redis.

The HTTP control API (FastAPI) grows here with its own issue.
"""
