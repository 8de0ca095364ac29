"""Unico: a telephony IVR and skill-based ACD engine on Asterisk ARI."""

__version__ = "0.1.0"
