"""Choose, score, explain: the chosen model, its metrics on validation and test (read once), and saliency."""
