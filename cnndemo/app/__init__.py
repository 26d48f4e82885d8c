"""The Gradio front end of cnndemo: components and the Blocks that build the app."""
