import sys

from mot_kd.errors import cli_entry
from mot_kd.export.cli import main

sys.exit(cli_entry(main)())
