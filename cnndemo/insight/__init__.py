""""Why did it say that?": compare the networks, attribution, receptive fields and the test-set mistakes.

Core modules (torch + captum only, no gradio, no matplotlib): :mod:`compare`, :mod:`attribution`,
:mod:`receptive_field`, :mod:`mistakes`. Pictures: :mod:`render`. The Gradio tab: :mod:`tab`.
"""
