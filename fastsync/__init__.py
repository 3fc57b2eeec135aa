"""fastsync: resumable, bandwidth-capped streaming copy of huge trees between mounted shares."""

__version__ = "0.1.0"
