import sys

from videojepa.cli.main import main

sys.exit(main())
