"""The emulator's HTTP routes, one module per concern; each exports `ROUTES`.
A module named like one of the emulator's own (`tasks`, `parsing`,
`generation`) is that module's HTTP face."""
