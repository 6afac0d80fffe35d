"""Container entry point: hand the environment to the CLI and exit with its code.

The GitHub runner passes every declared input as `INPUT_<NAME>` (hyphens kept);
`deployer.cli` reads them. Nothing runs at import time but this.
"""

import os
import sys

from deployer.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ, process_env=os.environ))
