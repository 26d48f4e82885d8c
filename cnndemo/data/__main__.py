"""``python -m cnndemo.data prepare|verify [--dataset NAME] [--root DIR] [--from DIR]``: fill or check the data folder."""

import sys

from cnndemo.data.fetch import main

sys.exit(main())
