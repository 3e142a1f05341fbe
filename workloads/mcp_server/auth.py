"""Who is calling: an API key (`X-API-Key`, or `Authorization: Bearer <key>`) looked up by its sha256 in the
policy, or a JWT bearer token (pyjwt; HS256 secret or a public key from the environment) whose role claim
names a policy role. Credentials never reach logs: principals carry the key's name or the token's subject."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from workloads.mcp_server.config import Settings
from workloads.mcp_server.errors import Unauthenticated
from workloads.mcp_server.policy import Policy

HOW_TO = "send an API key in the X-API-Key header or a bearer token in Authorization"


@dataclass(frozen=True)
class Principal:
    name: str  # key name, or `jwt:<sub>`
    role: str
    method: str  # api-key | jwt
    rate_limit_per_minute: int
    issuer: str | None = None


class Authenticator:
    def __init__(self, settings: Settings, policy: Policy):
        self.settings = settings
        self.policy = policy
        if settings.jwt_secret:
            self._jwt_key, self._algorithms = settings.jwt_secret.get_secret_value(), ["HS256"]
        elif settings.jwt_public_key:
            self._jwt_key, self._algorithms = settings.jwt_public_key.get_secret_value(), ["RS256", "ES256"]
        else:
            self._jwt_key, self._algorithms = None, []

    def from_headers(self, headers: Mapping[str, str]) -> Principal:
        """The caller of an HTTP request; raises `Unauthenticated` with a reason the caller can act on."""
        if key := headers.get("x-api-key"):
            return self.from_key(key)
        authorization = headers.get("authorization", "")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            credential = credential.strip()
            return self.from_token(credential) if credential.count(".") == 2 else self.from_key(credential)
        raise Unauthenticated(f"no credentials: {HOW_TO}")

    def from_key(self, key: str) -> Principal:
        entry = self.policy.key(key)
        if entry is None:
            raise Unauthenticated("unknown API key")
        limit = self.policy.rate_limit(entry.role, entry, self.settings.rate_limit_per_minute)
        return Principal(entry.name, entry.role, "api-key", limit)

    def from_token(self, token: str) -> Principal:
        if self._jwt_key is None:
            raise Unauthenticated("bearer JWTs are not accepted here (no DP_MCP_JWT_SECRET / DP_MCP_JWT_PUBLIC_KEY)")
        options = {"require": ["exp", "sub"]}
        try:
            claims = jwt.decode(token, self._jwt_key, algorithms=self._algorithms, options=options,
                                audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer)
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("bearer token expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid bearer token: {exc}") from None
        role = claims.get(self.settings.jwt_role_claim)
        if not isinstance(role, str) or self.policy.role(role) is None:
            raise Unauthenticated(f"bearer token's {self.settings.jwt_role_claim!r} claim names no policy role")
        limit = self.policy.rate_limit(role, None, self.settings.rate_limit_per_minute)
        return Principal(f"jwt:{claims['sub']}", role, "jwt", limit, claims.get("iss"))
