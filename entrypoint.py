"""Container entry point: hand the environment to the CLI and exit with its code.

The GitHub runner passes every declared input as `INPUT_<NAME>` (hyphens kept);
`deployer.cli` reads them. Nothing runs at import time but this.
"""

import os
import signal
import sys

from deployer.cli import main

if __name__ == "__main__":
    # SIGTERM (`docker stop`, a cancelled job) ends the run like Ctrl-C: reported, exit 130.
    # As the container's PID 1 the process would otherwise ignore SIGTERM altogether.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main(sys.argv[1:], os.environ, process_env=os.environ))
