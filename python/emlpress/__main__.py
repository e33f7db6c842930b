import sys

from emlpress.cli import main

sys.exit(main())
