"""Load, soak and fault test of the app over HTTP (issue #9): ``python -m benchmarks.loadtest --short|--full``.

Talks to ``python app.py`` only through ``gradio_client`` and raw ``httpx`` on 127.0.0.1, so it does not
depend on the package layout. Every part is bounded in requests and time and stops by itself.
"""
