"""forensics: offline breach forensics for API traffic logs."""

__version__ = "0.1.0"
