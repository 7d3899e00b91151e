"""SIP gateway: places the calls (SIP UAC over UDP/TCP), runs IVR scripts, connects agents.

Nothing is here yet: it is built by its own issue ("SIP gateway: outbound calls at carrier
rates, IVR with DTMF, agent connect"). The package exists so that the wheel's layout is the one
the design names.
"""
