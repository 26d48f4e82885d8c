"""Data: the datasets as tensors (:mod:`.datasets`), filling the data folder (:mod:`.fetch`, ``python -m
cnndemo.data prepare``), and turning a visitor's image into the 28 x 28 input (:mod:`.decode`, :mod:`.framing`).

Light on purpose: importing ``cnndemo.data`` imports none of its modules (torchvision loads on first use).
"""
