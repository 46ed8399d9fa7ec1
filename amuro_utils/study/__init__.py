"""The study a profile describes and what it costs: the registry of stages, one per notebook (`stages`); jobs,
evaluation plans and where each result lives with the identity it must carry (`plan`); profile overrides and results
sources (`overrides`); the GPU-hour and CPU wall-time models (`cost`); the hub preflight and dataset pins
(`hubcheck`); running the model jobs and storing what they make (`jobs`); the current records and artifacts as
frames (`frames`)."""
