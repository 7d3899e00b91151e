"""IVR scripts for agentless campaigns: scripts are data (`scripts/*.toml`), run by a sans-I/O
interpreter (`script.py`) that the media engine will drive with prompt-done and DTMF events."""
