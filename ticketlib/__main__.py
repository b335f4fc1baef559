import sys

from ticketlib.runner.run import main

sys.exit(main())
