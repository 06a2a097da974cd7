"""The operator's commands (`tryon jobs`, `tryon keys`, `tryon budget`): they act on
a deployed stack (found by name, on the operator's credentials) or on the local one,
through the stages' own code. Apart from tryon_local, which runs a stack locally."""
