"""`payment`: what the checkout offers and how it reaches the payment providers.

Amounts are integers in the currency's minor unit (cents), as the providers' APIs take them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from service.bulk.schemas.currencies import CODES
from service.catalog.settings.base import PRINTABLE, Integral, SettingDefinition
from service.wire import CamelModel, StrictModel

Method = Literal[
    "card",
    "cash_on_delivery",
    "bank_transfer",
    "paypal",
    "apple_pay",
    "google_pay",
    "klarna",
    "invoice",
]
Provider = Literal["stripe", "paypal", "adyen", "mollie", "klarna"]
#: ISO 4217 code of a currency in circulation, upper case
Currency = Annotated[
    str, Field(pattern="^(?:" + "|".join(sorted(CODES)) + ")$", min_length=3, max_length=3)
]
#: an amount in minor units: up to 10 billion in major units
Amount = Annotated[int, Field(ge=0, le=1_000_000_000_000), Integral]
Minutes = Annotated[int, Field(ge=1, le=1440), Integral]
Text = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
Key = Annotated[str, Field(min_length=1, max_length=512, pattern=PRINTABLE)]

SECRETS = frozenset({"apiKey", "webhookSecret"})
MAX_CURRENCIES = 32


def _card() -> list[Method]:
    return ["card"]


def _eur() -> list[str]:
    return ["EUR"]


class Limits(StrictModel):
    """Cash-on-delivery limits of an order's total, in minor units."""

    min_order_amount: Amount = Field(0, description="smallest order total taken, minor units")
    max_order_amount: Amount = Field(
        50_000, description="largest order total taken, minor units; at least minOrderAmount"
    )
    fee: Amount = Field(0, description="charged on top, minor units")

    @field_validator("max_order_amount")
    @classmethod
    def _at_least_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_order_amount")
        if low is not None and value < low:
            raise ValueError(f"is below minOrderAmount ({low})")
        return value


class CashOnDelivery(Limits):
    """Limits in the default currency, and other currencies' own."""

    per_currency: dict[Currency, Limits] = Field(
        default_factory=dict,
        max_length=MAX_CURRENCIES,
        description="limits of other currencies, by ISO 4217 code",
        json_schema_extra={"additionalProperties": False},  # keys: the codes' pattern only
    )


class ProviderInput(StrictModel):
    """A payment provider's account. apiKey and webhookSecret are write-only: leave them out to
    keep what is stored, send null to remove them."""

    display_name: Text = Field(description="what the checkout shows, e.g. 'Credit card'")
    enabled: bool = False
    mode: Literal["test", "live"] = "test"
    publishable_key: Key | None = Field(None, description="the key the browser may see")
    api_key: Key | None = Field(None, description="secret; never shown again")
    webhook_secret: Key | None = Field(None, description="secret; never shown again")


class PaymentSettings(StrictModel):
    """The payment settings page: methods, currencies, cash-on-delivery, providers."""

    enabled_methods: list[Method] = Field(
        default_factory=_card,
        max_length=8,
        description="what the checkout offers, in order",
        json_schema_extra={"uniqueItems": True},
    )
    accepted_currencies: list[Currency] = Field(
        default_factory=_eur,
        min_length=1,
        max_length=MAX_CURRENCIES,
        json_schema_extra={"uniqueItems": True},
    )
    default_currency: Currency = Field("EUR", description="one of acceptedCurrencies")
    cash_on_delivery: CashOnDelivery = Field(
        default_factory=CashOnDelivery,
        description="perCurrency names accepted currencies only",
    )
    providers: dict[Provider, ProviderInput] = Field(default_factory=dict, max_length=5)
    payment_timeout_minutes: Minutes = Field(
        30, description="how long an unpaid order stays reserved"
    )
    capture: Literal["automatic", "manual"] = Field(
        "automatic", description="capture at authorisation, or when the order ships"
    )

    @field_validator("enabled_methods", "accepted_currencies")
    @classmethod
    def _each_once(cls, items: list[str]) -> list[str]:
        if len(set(items)) != len(items):
            raise ValueError("names an item twice")
        return items

    @field_validator("default_currency")
    @classmethod
    def _accepted(cls, value: str, info: ValidationInfo) -> str:
        accepted = info.data.get("accepted_currencies")
        if accepted is not None and value not in accepted:
            raise ValueError("is not one of acceptedCurrencies")
        return value

    @field_validator("cash_on_delivery")
    @classmethod
    def _accepted_limits(cls, value: CashOnDelivery, info: ValidationInfo) -> CashOnDelivery:
        accepted = info.data.get("accepted_currencies")
        stray = sorted(set(value.per_currency) - set(accepted or value.per_currency))
        if stray:
            raise ValueError(f"perCurrency names currencies not accepted: {', '.join(stray)}")
        return value


class ProviderAdmin(CamelModel):
    display_name: str
    enabled: bool
    mode: Literal["test", "live"]
    publishable_key: str | None
    api_key_configured: bool = Field(description="whether an apiKey is stored")
    webhook_secret_configured: bool = Field(description="whether a webhookSecret is stored")


class PaymentAdmin(CamelModel):
    """The payment settings as an admin sees them: secrets only as `…Configured` flags."""

    enabled_methods: list[Method]
    default_currency: str
    accepted_currencies: list[str]
    cash_on_delivery: CashOnDelivery
    providers: dict[Provider, ProviderAdmin]
    payment_timeout_minutes: int
    capture: Literal["automatic", "manual"]


class ProviderPublic(CamelModel):
    display_name: str
    enabled: bool
    publishable_key: str | None


class PaymentPublic(CamelModel):
    """What a checkout page needs: no secret, no provider mode."""

    enabled_methods: list[Method]
    default_currency: str
    accepted_currencies: list[str]
    cash_on_delivery: CashOnDelivery
    providers: dict[Provider, ProviderPublic]
    payment_timeout_minutes: int


PAYMENT = SettingDefinition(
    key="payment",
    description="Payment methods, currencies, cash-on-delivery limits and providers",
    input_model=PaymentSettings,
    admin_model=PaymentAdmin,
    public_model=PaymentPublic,
    secrets=SECRETS,
)
