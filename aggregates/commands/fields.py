"""Field types shared by command payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]
Owner = Annotated[str, Field(min_length=1, max_length=100, description="user or queue id")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
