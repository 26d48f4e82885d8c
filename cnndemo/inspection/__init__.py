"""Inspection: the hook-capture helper (:mod:`.hooks`), the analysis of one input (:mod:`.analysis`) and the
pictures drawn from it (:mod:`.render`). The first two are plain torch and run on a GPU box without gradio
or matplotlib.
"""
