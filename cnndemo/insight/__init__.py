""""Why did it say that?": compare the networks, attribution, receptive fields and the test-set mistakes.

Core modules (torch, captum and torchinfo; no gradio): :mod:`.compare`, :mod:`.attribution`,
:mod:`.receptive_field`, :mod:`.mistakes`. Pictures: :mod:`.render` (colour tables from
:mod:`cnndemo.inspection.render`). The views and the tab: :mod:`cnndemo.app.insight_views`,
:mod:`cnndemo.app.insight_tab`.
"""
