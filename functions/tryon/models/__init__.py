"""The models the pipeline can use, as data, and how a look becomes each one's request."""
