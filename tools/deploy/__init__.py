"""Model deploys: the registry of model versions, deploy plans, targets and verification."""
