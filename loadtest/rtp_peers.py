"""Far ends for media load: N RTP peers in one process (one media engine thread) that send a
20 ms frame to each of our calls every 20 ms, as a subscriber's phone does.

    python -m loadtest.rtp_peers < ports.json      # one JSON line: [our_port, ...]

It opens one call per port, sends to 127.0.0.1:<port>, prints one JSON line with its own ports
(in the same order), then runs until its stdin closes and prints its statistics as JSON.
"""

from __future__ import annotations

import json
import sys

import dialer_core


def main() -> None:
    ports = json.loads(sys.stdin.readline())
    engine = dialer_core.MediaEngine(send_silence=True)
    mine = []
    for port in ports:
        call, own = engine.open()
        engine.connect(call, "127.0.0.1", int(port))
        mine.append(own)
    print(json.dumps(mine), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    print(json.dumps(engine.stats()), flush=True)
    engine.shutdown()


if __name__ == "__main__":
    main()
