"""refloop: referral relationship management for specialty practices."""

__version__ = "0.1.0"
