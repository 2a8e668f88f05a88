"""One model, many views: ip commands, diagrams, JSON."""
