"""SIP gateway: places the calls (SIP UAC over UDP or TCP), and later runs IVR scripts and connects agents.

Built so far (issue 4, first part):
- `message`: RFC 3261 message parsing and building (compact forms, folding, lists); malformed
  input raises `SipParseError`.
- `transaction`: INVITE and non-INVITE client transactions, sans-I/O, timers A/B/D/M and E/F/K.
- `call`: one outbound call as the transaction user: ringing, ring timeout -> CANCEL, 2xx ACKed
  end to end (Contact, Record-Route), the CANCEL/200 race (ACK then BYE), BYE both ways.
- `outcomes`: the outcome of a call from its final response.
- `auth`: Digest answers to 401/407; `rate`: CPS, channels, 503 back-off per trunk.
- `uac`: the asyncio (uvloop) UDP or TCP transport that drives them.
Not yet: TLS, session timers, media (RTP, IVR, DTMF), agent connect. See docs/sip.md.
"""
