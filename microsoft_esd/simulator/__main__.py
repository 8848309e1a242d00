import sys

from ..cli import main

sys.exit(main(["simulator", *sys.argv[1:]]))
