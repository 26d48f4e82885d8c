"""``python -m cnndemo.train --arch ARCH --dataset DATASET [...]`` (also under ``torchrun --nproc_per_node N``)."""

import sys

from cnndemo.train.cli import main

sys.exit(main())
