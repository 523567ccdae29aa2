import sys

from mot_kd.bench.cli import main
from mot_kd.errors import cli_entry

sys.exit(cli_entry(main)())
