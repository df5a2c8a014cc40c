"""Using a finished run: predict, export, and the embeddings benchmark."""
