"""Container entry point: hand the environment to the CLI and exit with its code.

The GitHub runner passes every declared input as `INPUT_<NAME>` (hyphens kept);
`deployer.cli` reads them. Nothing runs at import time but this.
"""

import signal

from deployer.cli import console_main

if __name__ == "__main__":
    # SIGTERM (`docker stop`, a cancelled job) ends the run like Ctrl-C: reported, exit 130.
    # As the container's PID 1 the process would otherwise ignore SIGTERM altogether.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    console_main()  # the same as the `s3-cloudfront-deploy` command
