"""Report pages, sections, Markdown, plots and the model card: reads records, never trains."""
