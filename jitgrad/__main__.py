import sys

from jitgrad.cli import main

sys.exit(main())
