"""The pacer: one loop per owned campaign partition, claiming contacts from the call queue and
handing them to the SIP gateway at the rate the pacing engine decides.

Today it holds the asyncio adapter over the Rust call queue (`queue_client`); the loop itself
comes with the runtime issue.
"""
