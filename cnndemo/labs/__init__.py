"""Architecture labs from the source material (issue #11), core only (no gradio, no matplotlib).

:mod:`.bottleneck` (what the 1x1 reductions of an Inception module save), :mod:`.gradient_flow` (a plain
deep CNN against the same CNN with skip connections) and :mod:`.teach` (fine-tune a network on the
student's own handwriting). The first convolution's kernels are
:func:`cnndemo.inspection.analysis.first_conv_kernels`. The app's side: :mod:`cnndemo.app.lab_panels`
(calculator and kernel grid in the network tabs), :mod:`cnndemo.app.labs_tab`, :mod:`cnndemo.app.labs_plots`.
"""
