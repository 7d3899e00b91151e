"""A local SMSC simulator (SMPP 3.4 server, `smpp34`) for tests and the demo, on loopback.

    python -m loadtest.smsc --port 2775 --log sms.jsonl [--refuse-first 3] [--no-receipts]

Accepts every bind and every submit_sm (after refusing the first N with ESME_RTHROTTLED, to
exercise retries), writes one JSON line per accepted message (message id, sender, destination,
text decoded from its data_coding, time), and when asked sends a delivery receipt
(`id:<id> ... stat:DELIVRD`) back on the same session (or, if it closed, on the next one
bound). Prints `ready <port>` when listening;
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

import smpp34

from pacer.sms import nodelay


async def serve(port: int, log_path: str, refuse_first: int, receipts: bool) -> None:
    server = smpp34.Server("127.0.0.1", port, system_id="smsc-sim", inbound_capacity=100_000)
    await server.start()
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sessions: dict[str, smpp34.Esme] = {}
    seen = 0
    pending: set[asyncio.Future[object]] = set()
    held: list[tuple[str, str, str, bytes]] = []
    with open(log_path, "a", buffering=1) as log:
        nxt = asyncio.ensure_future(server.next())
        halt = asyncio.create_task(stop.wait())
        while True:
            done, _ = await asyncio.wait({nxt, halt}, return_when=asyncio.FIRST_COMPLETED)
            if halt in done:
                break
            ev = nxt.result()
            nxt = asyncio.ensure_future(server.next())
            if isinstance(ev, smpp34.Esme):
                sessions[ev.session_id] = ev
                # As a real SMSC would: no Nagle on the session (smpp34 leaves it on).
                nodelay(lambda local, remote: local[1] == port)
            elif isinstance(ev, smpp34.Unbound):
                sessions.pop(ev.session_id, None)
            elif isinstance(ev, smpp34.SubmitSmEvent):
                seen += 1
                if seen <= refuse_first:
                    ev.reject(smpp34.ESME_RTHROTTLED)
                    continue
                msg_id = f"sim{seen:08d}"
                ev.accept(msg_id)
                body = ev.short_message
                text = body.decode("utf-16-be") if ev.data_coding == 8 else body.decode("latin-1")
                log.write(json.dumps({"id": msg_id, "from": ev.source_addr, "from_ton": ev.source_addr_ton,
                                      "to": ev.destination_addr, "text": text, "t": time.time()}) + "\n")
                if receipts and ev.registered_delivery:
                    receipt = f"id:{msg_id} sub:001 dlvrd:001 submit date:0 done date:0 stat:DELIVRD err:000 text:".encode()
                    held.append((ev.session_id, ev.source_addr, ev.destination_addr, receipt))
            # Receipts go back on the session the message came on, or - as an SMSC keeps them for
            # the ESME's next bind - on any session still bound.
            while held and sessions:
                sid, src, dst, receipt = held.pop(0)
                esme = sessions.get(sid) or next(iter(sessions.values()))
                t = asyncio.ensure_future(esme.deliver_sm(src, receipt, source_addr=dst, esm_class=0x04))
                pending.add(t)
                t.add_done_callback(pending.discard)
        nxt.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await server.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=2775)
    p.add_argument("--log", required=True, help="JSON lines, one per accepted message")
    p.add_argument("--refuse-first", type=int, default=0, help="refuse the first N submits (ESME_RTHROTTLED)")
    p.add_argument("--no-receipts", action="store_true", help="send no delivery receipts")
    a = p.parse_args()
    asyncio.run(serve(a.port, a.log, a.refuse_first, not a.no_receipts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
