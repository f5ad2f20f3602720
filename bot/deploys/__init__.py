"""Deploy and rollback requests: plans, approvals, the approval flow in Slack."""
