"""Live fine-tuning: what a run is (:mod:`.spec`), the device side that trains (:mod:`.job`), the session side that
queues, relays and keeps the result (:mod:`.session`), who may train when (:mod:`.runs`) and the per-session store
of fine-tuned models (:mod:`.store`). All training work is done by :mod:`cnndemo.train`. No gradio.
"""
