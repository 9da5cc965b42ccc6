"""Single sign-on through an OpenID Connect provider (DESIGN.md section 14), the parts
without I/O: the settings read from the environment, the role mapping
(`ROUTER_OIDC_ROLES`), PKCE (S256), the authorization URL, and the ID token's checks
(signature against the provider's keys, issuer, audience, expiry, nonce). Fetching the
discovery document, the keys and the token is `router.web.oidc`'s.

The role mapping is a comma-separated list of `claim:value=role` entries and at most
one `*=role`. A claim's value may be a string (it must equal `value`) or a list (one of
its strings must); a claim name with dots (`realm_access.roles`) looks inside nested
objects when no claim has the dotted name itself. Every entry that matches counts and
the highest of their roles wins (viewer < operator < admin), so the order of the entries
does not matter and `*=viewer` is a floor for everyone else. A person no entry matches
(and no `*`) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

from router.core.public_url import PUBLIC_URL_VARIABLE, public_base_url
from router.operators.users import ROLES, Role

CALLBACK_PATH = "/ui/oidc/callback"
SCOPES = ("openid", "profile", "email")
LEEWAY = 60  # seconds of clock skew allowed on exp, iat and nbf
# Asymmetric algorithms only: never `none`, and no HMAC keyed with the client secret.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
MAX_NAME = 200

ISSUER = "ROUTER_OIDC_ISSUER"
CLIENT_ID = "ROUTER_OIDC_CLIENT_ID"
CLIENT_SECRET = "ROUTER_OIDC_CLIENT_SECRET"  # noqa: S105 (the variable's name)
ROLES_VARIABLE = "ROUTER_OIDC_ROLES"
PUBLIC_URL = PUBLIC_URL_VARIABLE


class OidcSettingError(ValueError):
    """A single sign-on setting `serve` cannot use; the message names the variable."""


class SignInRefused(Exception):
    """A sign-in the router refuses; `message` says why, fit for the person signing in
    (no token, code or secret in it). `status` is the HTTP status of the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class UnknownSigningKey(Exception):
    """The ID token names a key (`kid`) the provider's key set does not hold (yet)."""


# -- the role mapping ---------------------------------------------------------------


@dataclass(frozen=True)
class RoleRule:
    claim: str | None  # None: `*`, everyone
    value: str
    role: Role

    def matches(self, claims: Mapping[str, Any]) -> bool:
        return self.claim is None or self.value in claim_values(claims, self.claim)


@dataclass(frozen=True)
class RoleMap:
    rules: tuple[RoleRule, ...]

    @classmethod
    def parse(cls, text: str) -> RoleMap:
        """The mapping in `ROUTER_OIDC_ROLES`; OidcSettingError names the bad entry."""
        rules: list[RoleRule] = []
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            where, equals, role = entry.rpartition("=")
            where, role = where.strip(), role.strip()
            if not equals or not where:
                raise OidcSettingError(
                    f"{ROLES_VARIABLE}: {entry!r} is not claim:value=role (or *=role)"
                )
            if role not in ROLES:
                raise OidcSettingError(
                    f"{ROLES_VARIABLE}: {entry!r}: the role must be viewer, operator or admin,"
                    f" got {role!r}"
                )
            if where == "*":
                if any(rule.claim is None for rule in rules):
                    raise OidcSettingError(f"{ROLES_VARIABLE}: '*' is given more than once")
                rules.append(RoleRule(None, "", cast(Role, role)))
                continue
            claim, colon, value = where.partition(":")
            claim, value = claim.strip(), value.strip()
            if not colon or not claim or not value:
                raise OidcSettingError(
                    f"{ROLES_VARIABLE}: {entry!r} is not claim:value=role (or *=role)"
                )
            rules.append(RoleRule(claim, value, cast(Role, role)))
        if not rules:
            raise OidcSettingError(
                f"{ROLES_VARIABLE} maps no claim to a role"
                " (for example groups:ops-admins=admin,groups:ops=operator,*=viewer)"
            )
        return cls(tuple(rules))

    def role_for(self, claims: Mapping[str, Any]) -> Role | None:
        """The highest role of the entries that match, or None when none does."""
        matched = [rule.role for rule in self.rules if rule.matches(claims)]
        return max(matched, key=ROLES.index) if matched else None

    @property
    def claims(self) -> tuple[str, ...]:
        """The claims the mapping reads, each once, in the order given."""
        return tuple(dict.fromkeys(rule.claim for rule in self.rules if rule.claim is not None))


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The strings a claim holds: a string is one, a list gives the strings in it;
    anything else none. `a.b` reads claim `a.b`, or else `b` inside object `a`."""
    if name in claims:
        value: Any = claims[name]
    else:
        value = claims
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return []
            value = value[part]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


# -- settings -----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether a URL's host names this machine (`localhost`, 127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_safe_endpoint(url: object) -> bool:
    """Whether a URL from the discovery document may be used: https, or plain http on a
    loopback address (the client secret and the code travel to the token endpoint)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if host is None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    roles: RoleMap
    public_url: str  # without a trailing slash
    client_secret: str | None = field(default=None, repr=False)  # None: a public client

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}{CALLBACK_PATH}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


def _issuer(text: str) -> str:
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("https", "http"):
        raise OidcSettingError(f"{ISSUER} must be an https URL, got {text!r}")
    if parts.query or parts.fragment:
        raise OidcSettingError(f"{ISSUER} must have no query or fragment, got {text!r}")
    if parts.scheme != "https" and not is_loopback(host):
        raise OidcSettingError(
            f"{ISSUER} must be https (plain http only on a loopback address), got {text!r}"
        )
    return text


def _public_url(text: str | None) -> str:
    if not text:
        raise OidcSettingError(
            f"{PUBLIC_URL} is required with {ISSUER}: the provider sends people back to"
            f" <{PUBLIC_URL}>{CALLBACK_PATH}"
        )
    try:
        return public_base_url(text)
    except ValueError as error:
        raise OidcSettingError(str(error)) from None


def oidc_settings_from_env(env: Mapping[str, str]) -> OidcSettings | None:
    """The single sign-on settings, or None when `ROUTER_OIDC_ISSUER` is not set.
    OidcSettingError names the variable that is missing or wrong."""
    issuer = (env.get(ISSUER) or "").strip()
    if not issuer:
        return None
    client_id = (env.get(CLIENT_ID) or "").strip()
    if not client_id:
        raise OidcSettingError(f"{CLIENT_ID} is required with {ISSUER}")
    roles = (env.get(ROLES_VARIABLE) or "").strip()
    if not roles:
        raise OidcSettingError(
            f"{ROLES_VARIABLE} is required with {ISSUER}"
            " (for example groups:ops-admins=admin,groups:ops=operator,*=viewer)"
        )
    return OidcSettings(
        issuer=_issuer(issuer),
        client_id=client_id,
        roles=RoleMap.parse(roles),
        public_url=_public_url(env.get(PUBLIC_URL)),
        client_secret=env.get(CLIENT_SECRET) or None,
    )


# -- the authorization request --------------------------------------------------------


def new_secret() -> str:
    """A fresh random value for `state`, `nonce` or the PKCE verifier (43 characters of
    the URL-safe alphabet RFC 7636 allows)."""
    return secrets.token_urlsafe(32)


def s256_challenge(verifier: str) -> str:
    """The PKCE code challenge of a verifier (RFC 7636, method S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    endpoint: str, settings: OidcSettings, *, state: str, nonce: str, verifier: str
) -> str:
    """Where to send the browser: the provider's authorization endpoint asking for a
    code (the endpoint's own query parameters kept)."""
    parts = urlsplit(endpoint)
    query = [
        *parse_qsl(parts.query, keep_blank_values=True),
        ("response_type", "code"),
        ("client_id", settings.client_id),
        ("redirect_uri", settings.redirect_uri),
        ("scope", " ".join(SCOPES)),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", s256_challenge(verifier)),
        ("code_challenge_method", "S256"),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def token_request(settings: OidcSettings, *, code: str, verifier: str) -> dict[str, str]:
    """The form posted to the token endpoint (the client secret, when there is one,
    goes in it: `client_secret_post`)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": settings.redirect_uri,
        "client_id": settings.client_id,
        "code_verifier": verifier,
    }
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    return form


def accepted_algorithms(advertised: object) -> list[str]:
    """The signing algorithms to accept: those the discovery document advertises
    (`id_token_signing_alg_values_supported`, RS256 when absent) that are asymmetric."""
    if not isinstance(advertised, list):
        advertised = ["RS256"]
    return [alg for alg in SIGNING_ALGORITHMS if alg in advertised]


# -- the ID token -------------------------------------------------------------------


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_id_token(
    id_token: str,
    keys: KeySet,
    *,
    settings: OidcSettings,
    nonce: str,
    now: float,
    algorithms: Iterable[str],
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce are
    right. Raises UnknownSigningKey when it names a key `keys` lacks (the caller fetches
    the provider's keys again, once), SignInRefused naming what is wrong otherwise."""
    try:
        token = jwt.decode(id_token, keys, algorithms=list(algorithms))
    except InvalidKeyIdError:
        raise UnknownSigningKey from None
    except BadSignatureError:
        raise SignInRefused(
            "The ID token's signature does not match the provider's published keys."
        ) from None
    except UnsupportedAlgorithmError:
        raise SignInRefused(
            "The ID token is signed with an algorithm the router does not accept."
        ) from None
    except (JoseError, ValueError, TypeError):
        raise SignInRefused("The ID token is not a well-formed signed JWT.") from None
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=int(now),
        leeway=LEEWAY,
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": settings.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise SignInRefused("The ID token has expired; sign in again.") from None
    except MissingClaimError as missing:
        raise SignInRefused(f"The ID token lacks the claim(s) {missing.claim}.") from None
    except InvalidClaimError as invalid:
        raise SignInRefused(_invalid_claim(invalid.claim, claims, settings)) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.client_id:
        raise SignInRefused(
            "The ID token names several audiences but is not authorized for this client (azp)."
        )
    return claims


def _invalid_claim(claim: str, claims: Mapping[str, Any], settings: OidcSettings) -> str:
    if claim == "iss":
        return (
            f"The ID token was issued by {_shown(claims.get('iss'))}, not by {ISSUER}"
            f" ({settings.issuer})."
        )
    if claim == "aud":
        return (
            f"The ID token is meant for {_shown(claims.get('aud'))}, not for this router's"
            f" client id ({CLIENT_ID})."
        )
    if claim == "nonce":
        return "The ID token's nonce does not match this sign-in (a replayed or mixed-up sign-in)."
    if claim in ("iat", "nbf"):
        return "The ID token is not valid yet (check the clocks of the router and the provider)."
    return f"The ID token's claim {claim!r} is not valid."


def principal_name(claims: Mapping[str, Any]) -> str:
    """Who signed in, as the console and the audit name them: `preferred_username`, else
    `email`, else `sub` (control characters dropped, at most 200 characters)."""
    for key in ("preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str):
            name = "".join(char for char in value if char.isprintable()).strip()[:MAX_NAME]
            if name:
                return name
    raise SignInRefused("The ID token names nobody (no preferred_username, email or sub).")


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison of two values such as `state`."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
