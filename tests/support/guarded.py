"""`dialer ...` for tests under the blocking-call detector: `python -m tests.support.guarded serve
...` runs the command line as `dialer` does, with blockbuster raising on any blocking call the
project's packages make on a running event loop (the API's handlers, the runtime, the recorder,
the SMS sender). A blocking call then fails the request or the call, and the test with it."""

from __future__ import annotations

import sys

from blockbuster import blockbuster_ctx

from api.cli import main

if __name__ == "__main__":
    with blockbuster_ctx(["store", "pacer", "api", "sip_gateway"]):
        sys.exit(main())
