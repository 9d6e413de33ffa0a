"""The load generator (`inbox load`): realistic mixed traffic into the ingress topics at a steady,
open-loop rate, followed to its effects for end-to-end latency, losses and duplicates.

- `traffic`: pure generators of events (shops' customers on every channel, in six languages).
- `schedule`: open-loop pacing (events leave on time whatever the system's speed).
- `follow`: consumers of the effect topics, matching each effect to the event that caused it.
- `report`: percentiles and the summary.
- `runner`: a load session against a running stack (shops, warm-up, phases, database checks).
- `cli`: the `inbox load` subcommand.
"""
