"""Architecture labs from the source material (issue #11).

Core modules (no gradio, no matplotlib): :mod:`.bottleneck` (what the 1x1 reductions of an
Inception module save), :mod:`.gradient_flow` (a plain deep CNN against the same CNN with skip
connections), :mod:`.teach` (fine-tune a network on the student's own handwriting) and
:mod:`.filters` (the first convolution's kernels). Pictures are in :mod:`.render`, the Gradio
tab in :mod:`.tab`.
"""
