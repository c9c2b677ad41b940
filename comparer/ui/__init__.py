"""The Gradio front end: thin Blocks and short handlers over the library. Only this imports gradio."""
