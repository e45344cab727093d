"""``python -m <pack> render ...``, or ``python path/to/<pack> render ...``: the pack's command line."""

import sys

if __package__:
    from .cli.main import main
else:
    # Run as a folder: there is no package, and the folder itself is sys.path[0].
    from cli.main import main

sys.exit(main())
