"""Settings of the Python service, read once from the environment."""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class Settings:
    """What the service can be told from outside. supervisord passes its environment on."""

    # PYTHON_LOG_LEVEL: DEBUG, INFO, WARNING, ERROR or CRITICAL. The Rust api has RUST_LOG.
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Read the settings; an unset or empty variable keeps its default."""
        raw = environ.get("PYTHON_LOG_LEVEL", "").strip()
        level = raw.upper() or cls.log_level
        if level not in logging.getLevelNamesMapping() or level == "NOTSET":
            raise ValueError(
                f"PYTHON_LOG_LEVEL is `{raw}`: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        return cls(log_level=level)
