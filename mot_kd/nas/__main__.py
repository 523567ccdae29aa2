import sys

from mot_kd.errors import cli_entry
from mot_kd.nas.cli import main

sys.exit(cli_entry(main)())
