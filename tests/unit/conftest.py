from moto_stages import moto_stages  # noqa: F401  (the fixture, for the tests here)
