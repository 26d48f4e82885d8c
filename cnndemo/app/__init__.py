"""The Gradio app: the loaded models (:mod:`.zoo`), plain view functions over one analysis (:mod:`.views`), the
page (:mod:`.layout`), its network tabs, HTTP endpoints and fine-tune tab. Everything gradio lives here.
"""
