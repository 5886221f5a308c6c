"""`payment`: what the checkout offers and how it reaches the payment providers.

Amounts are integers in the currency's minor unit (cents), as the providers' APIs take them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from service.bulk.schemas.currencies import CODES
from service.catalog.settings.base import PRINTABLE, SettingDefinition
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
Amount = Annotated[int, Field(ge=0, le=1_000_000_000_000)]
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
    max_order_amount: Amount = Field(50_000, description="largest order total taken, minor units")
    fee: Amount = Field(0, description="charged on top, minor units")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_order_amount > self.max_order_amount:
            raise ValueError("minOrderAmount must not exceed maxOrderAmount")
        return self


class CashOnDelivery(Limits):
    """Limits in the default currency, and other currencies' own."""

    per_currency: dict[Currency, Limits] = Field(
        default_factory=dict,
        max_length=MAX_CURRENCIES,
        description="limits of other currencies, by ISO 4217 code",
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
        default_factory=_card, max_length=8, description="what the checkout offers, in order"
    )
    default_currency: Currency = "EUR"
    accepted_currencies: list[Currency] = Field(
        default_factory=_eur, min_length=1, max_length=MAX_CURRENCIES
    )
    cash_on_delivery: CashOnDelivery = Field(default_factory=CashOnDelivery)
    providers: dict[Provider, ProviderInput] = Field(default_factory=dict, max_length=5)
    payment_timeout_minutes: int = Field(
        30, ge=1, le=1440, description="how long an unpaid order stays reserved"
    )
    capture: Literal["automatic", "manual"] = Field(
        "automatic", description="capture at authorisation, or when the order ships"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name, items in (
            ("enabledMethods", self.enabled_methods),
            ("acceptedCurrencies", self.accepted_currencies),
        ):
            if len(set(items)) != len(items):
                raise ValueError(f"{name} names an item twice")
        if self.default_currency not in self.accepted_currencies:
            raise ValueError("defaultCurrency must be one of acceptedCurrencies")
        stray = set(self.cash_on_delivery.per_currency) - set(self.accepted_currencies)
        if stray:
            raise ValueError(f"cashOnDelivery.perCurrency names currencies not accepted: {stray}")
        return self


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
