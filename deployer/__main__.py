"""`python -m deployer` runs the command line tool."""

from deployer.cli import console_main

console_main()
