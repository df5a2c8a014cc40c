"""The search: orchestrator, hypermodel, recording, oracles, pruners, budget, distributed mode and studies."""
