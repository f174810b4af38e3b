"""The IMS token answer (``POST /ims/token/v3``).
"""

from __future__ import annotations

from pydantic import (
    Field,
)

from aep_activator.aep.api.models.base import _Response


class TokenResponse(_Response):
    access_token: str = Field(min_length=1, repr=False)
    token_type: str = "bearer"
    expires_in: int = Field(gt=0, description="seconds (IMS /ims/token/v3)")
