"""Training: the loop (:mod:`.loop`), evaluation (:mod:`.evaluation`), recipes and optimizers (:mod:`.recipes`),
checkpoints (:mod:`.checkpoints`), distributed runs (:mod:`.distributed`) and the CLIs (``python -m cnndemo.train``,
``python -m cnndemo.train.scores``).

Light on purpose: importing ``cnndemo.train`` imports none of its modules.
"""
