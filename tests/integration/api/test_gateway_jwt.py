"""The gateway's JWT checked in the service (issue 12, "Deploy files checked by real tools"):
with OPS_JWT_ENABLED the caller comes from a valid Bearer token, never from bare headers.

Keys are generated in each test run (RSA and EC); the JWKS comes from a file, or from a small
real HTTP app under uvicorn on a free loopback port.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.app import create_app
from service.config import Settings
from tests.fixtures.app import SERVICE, TOKEN
from tests.fixtures.serving import ThreadedServer
from tests.integration.api.support import assert_problem

ISSUER = "https://gateway.example.com"
AUDIENCE = "common-operations"
TASKS = "/api/v1/operations/tasks"
SETTINGS = "/api/v1/settings/payment"


class Signer:
    """A private key and its public JWK."""

    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        if kind == "RSA":
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "alg": self.alg, "use": "sig"}

    def token(self, sub: str = "alice", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300}
        body |= claims
        return jwt.encode(body, self.key, algorithm=self.alg, headers={"kid": self.kid})


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.fixture(scope="module")
def rsa_key() -> Signer:
    return Signer("rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> Signer:
    return Signer("ec-1", "EC")


def jwt_settings(settings: Settings, **values: Any) -> Settings:
    base = {
        "jwt_enabled": True,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_roles_claim": "realm_access.roles",
    }
    return Settings(**(settings.model_dump() | base | values))


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def file_api(
    settings: Settings, tmp_path: Path, rsa_key: Signer, ec_key: Signer
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the gateway's keys in a JWKS file."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_key.jwk, ec_key.jwk]}))
    async for client in client_for(jwt_settings(settings, jwt_jwks_file=path)):
        yield client


class JwksServer:
    """A real HTTP app serving a JWKS that a test may change, counting its fetches."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.fetches = 0
        self.url = ""  #: set once it is served

        async def jwks(request: Request) -> JSONResponse:
            self.fetches += 1
            return JSONResponse({"keys": self.keys})

        self.app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])


@pytest.fixture
def jwks_server(rsa_key: Signer) -> Iterator[JwksServer]:
    jwks = JwksServer([rsa_key.jwk])
    with ThreadedServer(jwks.app) as server:
        jwks.url = f"{server.url}/.well-known/jwks.json"
        yield jwks


def admin(signer: Signer, sub: str = "root") -> str:
    return signer.token(sub, realm_access={"roles": ["admin"]})


class TestFileKeys:
    async def test_a_valid_token_is_the_caller(
        self, file_api: httpx.AsyncClient, rsa_key: Signer
    ) -> None:
        response = await file_api.post(
            TASKS, json={"taskType": "noop"}, headers=bearer(rsa_key.token("alice"))
        )
        assert response.status_code == 201, response.text
        assert response.json()["requestedBy"] == "alice"

    async def test_an_ec_key_works_too(self, file_api: httpx.AsyncClient, ec_key: Signer) -> None:
        response = await file_api.get(TASKS, headers=bearer(ec_key.token("erin")))
        assert response.status_code == 200, response.text

    async def test_roles_come_from_the_token_never_from_the_header(
        self, file_api: httpx.AsyncClient, rsa_key: Signer
    ) -> None:
        assert (await file_api.get(SETTINGS, headers=bearer(admin(rsa_key)))).status_code == 200
        plain = bearer(rsa_key.token("bob"), **{"X-User-Roles": "admin"})
        assert_problem(await file_api.get(SETTINGS, headers=plain), 403)

    async def test_roles_as_a_space_separated_string(
        self, settings: Settings, tmp_path: Path, rsa_key: Signer
    ) -> None:
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps({"keys": [rsa_key.jwk]}))
        configured = jwt_settings(
            settings, jwt_jwks_file=path, jwt_roles_claim="scope", jwt_user_claim="uid"
        )
        async for client in client_for(configured):
            token = rsa_key.token("ignored", uid="carol", scope="read admin")
            response = await client.get(SETTINGS, headers=bearer(token))
            assert response.status_code == 200, response.text

    async def test_bare_headers_are_no_longer_trusted(self, file_api: httpx.AsyncClient) -> None:
        headers = {"X-User-ID": "root", "X-User-Roles": "admin"}
        problem = assert_problem(await file_api.get(SETTINGS, headers=headers), 401)
        assert "Bearer" in problem["detail"]

    async def test_an_x_user_id_must_name_the_tokens_user(
        self, file_api: httpx.AsyncClient, rsa_key: Signer
    ) -> None:
        same = bearer(rsa_key.token("alice"), **{"X-User-ID": "alice"})
        assert (await file_api.get(TASKS, headers=same)).status_code == 200
        other = bearer(rsa_key.token("alice"), **{"X-User-ID": "mallory"})
        assert_problem(await file_api.get(TASKS, headers=other), 401)

    @pytest.mark.parametrize(
        "claims",
        [
            {"exp": int(time.time()) - 3600},  # expired
            {"aud": "another-service"},
            {"iss": "https://someone-else.example.com"},
            {"nbf": int(time.time()) + 3600},  # not yet valid
            {"sub": ""},
        ],
        ids=["expired", "audience", "issuer", "not-before", "no-user"],
    )
    async def test_invalid_tokens_are_401(
        self, file_api: httpx.AsyncClient, rsa_key: Signer, claims: dict[str, Any]
    ) -> None:
        response = await file_api.get(TASKS, headers=bearer(rsa_key.token(**claims)))
        assert_problem(response, 401)

    async def test_a_token_within_the_clock_skew_is_taken(
        self, file_api: httpx.AsyncClient, rsa_key: Signer
    ) -> None:
        token = rsa_key.token(exp=int(time.time()) - 5)  # leeway: 30 s by default
        assert (await file_api.get(TASKS, headers=bearer(token))).status_code == 200

    async def test_forged_and_malformed_tokens_are_401(
        self, file_api: httpx.AsyncClient, rsa_key: Signer
    ) -> None:
        impostor = Signer("rsa-1")  # same kid, another key
        for token in (
            impostor.token(),
            jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, "", algorithm="none"),
            jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, "k" * 32, algorithm="HS256"),
            "not-a-jwt",
            Signer("unknown-kid").token(),
            rsa_key.token()[:-4] + "AAAA",
        ):
            assert_problem(await file_api.get(TASKS, headers=bearer(token)), 401)

    async def test_the_service_token_still_works(self, file_api: httpx.AsyncClient) -> None:
        assert (await file_api.get(SETTINGS, headers=SERVICE)).status_code == 200
        assert (await file_api.get(SETTINGS, headers=bearer(TOKEN))).status_code == 200
        wrong = {"X-Service-Token": "not-the-token"}
        assert_problem(await file_api.get(SETTINGS, headers=wrong), 401)


class TestUrlKeys:
    async def test_keys_are_fetched_once_and_cached(
        self, settings: Settings, jwks_server: JwksServer, rsa_key: Signer
    ) -> None:
        async for client in client_for(jwt_settings(settings, jwt_jwks_url=jwks_server.url)):
            for _ in range(3):
                response = await client.get(TASKS, headers=bearer(rsa_key.token()))
                assert response.status_code == 200, response.text
        assert jwks_server.fetches == 1

    async def test_a_rotated_key_is_fetched_on_its_unknown_kid(
        self, settings: Settings, jwks_server: JwksServer, rsa_key: Signer
    ) -> None:
        configured = jwt_settings(
            settings, jwt_jwks_url=jwks_server.url, jwt_jwks_min_refresh_seconds=0
        )
        async for client in client_for(configured):
            assert (await client.get(TASKS, headers=bearer(rsa_key.token()))).status_code == 200
            rotated = Signer("rsa-2")
            jwks_server.keys = [rsa_key.jwk, rotated.jwk]
            response = await client.get(TASKS, headers=bearer(rotated.token("dave")))
            assert response.status_code == 200, response.text
        assert jwks_server.fetches == 2

    async def test_unknown_kids_refetch_within_bounds(
        self, settings: Settings, jwks_server: JwksServer, rsa_key: Signer
    ) -> None:
        configured = jwt_settings(
            settings, jwt_jwks_url=jwks_server.url, jwt_jwks_min_refresh_seconds=3600
        )
        async for client in client_for(configured):
            assert (await client.get(TASKS, headers=bearer(rsa_key.token()))).status_code == 200
            for n in range(5):
                made_up = Signer(f"made-up-{n}", "EC").token()
                assert_problem(await client.get(TASKS, headers=bearer(made_up)), 401)
        assert jwks_server.fetches == 1  # the first load; no refetch inside the bound

    async def test_keys_that_cannot_be_fetched_are_503(
        self, settings: Settings, rsa_key: Signer
    ) -> None:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{unused.getsockname()[1]}/jwks.json"
        async for client in client_for(jwt_settings(settings, jwt_jwks_url=url)):
            response = await client.get(TASKS, headers=bearer(rsa_key.token()))
            assert_problem(response, 503)


class TestSettings:
    @pytest.mark.parametrize(
        "values",
        [
            {"jwt_issuer": ""},
            {"jwt_audience": ""},
            {"jwt_jwks_url": ""},
            {"jwt_jwks_url": "http://x", "jwt_jwks_file": "/tmp/jwks.json"},
            {"jwt_algorithms": ["HS256"]},
            {"jwt_algorithms": ["none"]},
        ],
    )
    def test_an_incomplete_or_unsafe_check_is_refused(
        self, settings: Settings, values: dict[str, Any]
    ) -> None:
        base = {"jwt_jwks_url": "http://127.0.0.1:1/jwks.json"} | values
        with pytest.raises(ValueError, match="OPS_JWT"):
            jwt_settings(settings, **base)

    def test_off_by_default(self, settings: Settings) -> None:
        assert settings.jwt_enabled is False
