"""lfp_surrogate: neural-network surrogates of detailed neurons for LFP, EEG, MEG."""

from ._logging import set_log_level

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "set_log_level"]
