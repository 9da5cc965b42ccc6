"""Single sign-on's pure parts (router.operators.oidc): the role mapping, the settings
read from the environment, PKCE and the authorization URL, and the ID token's checks
on tokens signed here with generated keys."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from router.operators.oidc import (
    ROLES,
    OidcSettingError,
    OidcSettings,
    RoleMap,
    SignInRefused,
    UnknownSigningKey,
    accepted_algorithms,
    authorization_url,
    check_id_token,
    claim_values,
    is_loopback,
    is_safe_endpoint,
    new_secret,
    oidc_settings_from_env,
    principal_name,
    s256_challenge,
    token_request,
)

ROLES_TEXT = "groups:ops-admins=admin,groups:ops=operator,*=viewer"
ENV = {
    "ROUTER_OIDC_ISSUER": "https://sso.example.com/realms/ops",
    "ROUTER_OIDC_CLIENT_ID": "revring-router",
    "ROUTER_OIDC_CLIENT_SECRET": "s3cret-value",
    "ROUTER_OIDC_ROLES": ROLES_TEXT,
    "ROUTER_PUBLIC_URL": "https://router.example.com/",
}


# -- the role mapping ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"groups": ["ops-admins"]}, "admin"),
        ({"groups": ["ops"]}, "operator"),
        ({"groups": ["ops", "ops-admins"]}, "admin"),
        ({"groups": ["sales"]}, "viewer"),
        ({}, "viewer"),
        ({"groups": "ops"}, "operator"),  # a string claim
        ({"groups": "ops-admins ops"}, "viewer"),  # a string is one value, not a list
        ({"groups": [1, None, {"ops": 1}]}, "viewer"),  # only strings count
    ],
)
def test_roles_come_from_the_claim(claims: dict[str, Any], role: str) -> None:
    assert RoleMap.parse(ROLES_TEXT).role_for(claims) == role


def test_the_highest_matching_role_wins_whatever_the_order() -> None:
    claims = {"groups": ["ops", "ops-admins"]}
    assert RoleMap.parse("groups:ops=operator,groups:ops-admins=admin").role_for(claims) == "admin"
    assert RoleMap.parse("groups:ops-admins=admin,groups:ops=operator").role_for(claims) == "admin"
    assert RoleMap.parse("*=operator,groups:ops=viewer").role_for(claims) == "operator"


def test_without_a_star_an_unmatched_account_has_no_role() -> None:
    roles = RoleMap.parse("groups:ops=operator")
    assert roles.role_for({"groups": ["sales"]}) is None
    assert roles.role_for({}) is None
    assert roles.claims == ("groups",)


def test_nested_and_dotted_claims() -> None:
    keycloak = {"realm_access": {"roles": ["router-admin", "offline_access"]}}
    roles = RoleMap.parse("realm_access.roles:router-admin=admin")
    assert roles.role_for(keycloak) == "admin"
    assert roles.role_for({"realm_access": ["router-admin"]}) is None
    assert claim_values({"a.b": "x", "a": {"b": "y"}}, "a.b") == ["x"]  # the name first
    assert claim_values({"a": {"b": ["y", 2]}}, "a.b") == ["y"]
    assert claim_values({"a": "text"}, "a.b") == []


def test_a_value_may_hold_colons_and_spaces_around_entries_are_ignored() -> None:
    roles = RoleMap.parse(" hd : example.com = operator , email_verified:yes=viewer ")
    assert roles.role_for({"hd": "example.com"}) == "operator"
    assert RoleMap.parse("groups:team:ops=admin").role_for({"groups": ["team:ops"]}) == "admin"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "maps no claim to a role"),
        (" , ", "maps no claim to a role"),
        ("groups=admin", "'groups=admin' is not claim:value=role"),
        ("groups:ops", "'groups:ops' is not claim:value=role"),
        ("groups:=admin", "'groups:=admin' is not claim:value=role"),
        (":ops=admin", "':ops=admin' is not claim:value=role"),
        ("=admin", "'=admin' is not claim:value=role"),
        ("groups:ops=root", "the role must be viewer, operator or admin, got 'root'"),
        ("groups:ops=Admin", "got 'Admin'"),
        ("*=viewer,*=admin", "'*' is given more than once"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_variable_and_entry(text: str, message: str) -> None:
    with pytest.raises(OidcSettingError) as refused:
        RoleMap.parse(text)
    assert "ROUTER_OIDC_ROLES" in str(refused.value)
    assert message in str(refused.value)


safe_text = st.text(
    alphabet=st.characters(blacklist_characters=",=:*", blacklist_categories=("Cs", "Z", "Cc")),
    min_size=1,
    max_size=12,
)


@given(
    entries=st.lists(st.tuples(safe_text, safe_text, st.sampled_from(ROLES)), max_size=6),
    star=st.one_of(st.none(), st.sampled_from(ROLES)),
    values=st.dictionaries(
        safe_text, st.one_of(safe_text, st.lists(safe_text, max_size=4)), max_size=4
    ),
)
def test_the_role_is_the_highest_of_the_entries_that_match(
    entries: list[tuple[str, str, str]], star: str | None, values: dict[str, Any]
) -> None:
    parts = [f"{claim}:{value}={role}" for claim, value, role in entries]
    if star is not None:
        parts.append(f"*={star}")
    if not parts:
        return
    roles = RoleMap.parse(",".join(parts))
    expected = [role for claim, value, role in entries if value in claim_values(values, claim)]
    if star is not None:
        expected.append(star)
    got = roles.role_for(values)
    assert got == (max(expected, key=ROLES.index) if expected else None)
    # The order of the entries does not matter.
    assert RoleMap.parse(",".join(reversed(parts))).role_for(values) == got


@given(st.text(max_size=60))
def test_any_mapping_text_parses_or_is_refused_naming_the_variable(text: str) -> None:
    try:
        roles = RoleMap.parse(text)
    except OidcSettingError as refused:
        assert "ROUTER_OIDC_ROLES" in str(refused)
    else:
        assert roles.rules
        assert all(rule.role in ROLES for rule in roles.rules)


# -- settings -----------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = oidc_settings_from_env(ENV)
    assert settings is not None
    assert settings.issuer == "https://sso.example.com/realms/ops"
    assert settings.public_url == "https://router.example.com"
    assert settings.redirect_uri == "https://router.example.com/ui/oidc/callback"
    assert settings.discovery_url == (
        "https://sso.example.com/realms/ops/.well-known/openid-configuration"
    )
    assert settings.client_secret == "s3cret-value"
    assert "s3cret-value" not in repr(settings)


def test_without_an_issuer_single_sign_on_is_off() -> None:
    assert oidc_settings_from_env({}) is None
    assert oidc_settings_from_env({**ENV, "ROUTER_OIDC_ISSUER": " "}) is None


def test_a_trailing_slash_in_the_issuer_is_kept_and_not_doubled_in_discovery() -> None:
    settings = oidc_settings_from_env({**ENV, "ROUTER_OIDC_ISSUER": "https://x.auth0.com/"})
    assert settings is not None
    assert settings.issuer == "https://x.auth0.com/"  # the `iss` claim must equal it
    assert settings.discovery_url == "https://x.auth0.com/.well-known/openid-configuration"


def test_the_client_secret_is_optional_for_a_public_client() -> None:
    env = {key: value for key, value in ENV.items() if key != "ROUTER_OIDC_CLIENT_SECRET"}
    settings = oidc_settings_from_env(env)
    assert settings is not None and settings.client_secret is None
    assert "client_secret" not in token_request(settings, code="c", verifier="v")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ROUTER_PUBLIC_URL": None}, "ROUTER_PUBLIC_URL is required with ROUTER_OIDC_ISSUER"),
        ({"ROUTER_PUBLIC_URL": "router.example.com"}, "ROUTER_PUBLIC_URL must be"),
        ({"ROUTER_PUBLIC_URL": "https://r.example.com/?x=1"}, "ROUTER_PUBLIC_URL must be"),
        ({"ROUTER_OIDC_CLIENT_ID": None}, "ROUTER_OIDC_CLIENT_ID is required"),
        ({"ROUTER_OIDC_ROLES": None}, "ROUTER_OIDC_ROLES is required"),
        ({"ROUTER_OIDC_ROLES": "groups=admin"}, "ROUTER_OIDC_ROLES: 'groups=admin'"),
        ({"ROUTER_OIDC_ISSUER": "http://sso.example.com"}, "ROUTER_OIDC_ISSUER must be https"),
        ({"ROUTER_OIDC_ISSUER": "http://10.0.0.5:8080"}, "ROUTER_OIDC_ISSUER must be https"),
        ({"ROUTER_OIDC_ISSUER": "sso.example.com"}, "ROUTER_OIDC_ISSUER must be an https URL"),
        ({"ROUTER_OIDC_ISSUER": "ftp://sso.example.com"}, "ROUTER_OIDC_ISSUER must be an https"),
        ({"ROUTER_OIDC_ISSUER": "https://[::1"}, "ROUTER_OIDC_ISSUER must be an https URL"),
        ({"ROUTER_OIDC_ISSUER": "https://sso.example.com?x"}, "no query or fragment"),
    ],
)
def test_a_missing_or_wrong_setting_is_named(changes: dict[str, str | None], message: str) -> None:
    env = {**ENV, **changes}
    env = {key: value for key, value in env.items() if value is not None}
    with pytest.raises(OidcSettingError) as refused:
        oidc_settings_from_env(env)  # type: ignore[arg-type]
    assert message in str(refused.value)
    assert "s3cret-value" not in str(refused.value)


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:9000", "http://localhost:8080/realms/x", "http://[::1]:80"]
)
def test_plain_http_is_allowed_on_a_loopback_address(issuer: str) -> None:
    settings = oidc_settings_from_env({**ENV, "ROUTER_OIDC_ISSUER": issuer})
    assert settings is not None and settings.issuer == issuer


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("LOCALHOST") and is_loopback("a.localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost.example.com")
    assert not is_loopback("::ffff:8.8.8.8")


def test_endpoints_from_discovery_must_be_https_or_loopback() -> None:
    assert is_safe_endpoint("https://sso.example.com/token")
    assert is_safe_endpoint("http://127.0.0.1:8081/token")
    assert is_safe_endpoint("http://localhost/token")
    assert not is_safe_endpoint("http://sso.example.com/token")
    assert not is_safe_endpoint("ftp://127.0.0.1/token")
    assert not is_safe_endpoint("/token")
    assert not is_safe_endpoint("https://[::1/token")
    assert not is_safe_endpoint(None)


@given(st.text(max_size=40))
def test_any_issuer_text_is_accepted_or_refused_naming_the_variable(text: str) -> None:
    try:
        settings = oidc_settings_from_env({**ENV, "ROUTER_OIDC_ISSUER": text})
    except OidcSettingError as refused:
        assert "ROUTER_OIDC_ISSUER" in str(refused)
    else:
        if settings is not None:
            parts = urlsplit(settings.issuer)
            assert parts.scheme == "https" or is_loopback(parts.hostname or "")


# -- PKCE and the authorization request ------------------------------------------------


def test_the_s256_challenge_is_rfc_7636s() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_fresh_secrets_are_long_enough_and_url_safe() -> None:
    values = {new_secret() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert 43 <= len(value) <= 128  # RFC 7636's bounds for a verifier
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_authorization_url_asks_for_a_code_with_pkce() -> None:
    settings = oidc_settings_from_env(ENV)
    assert settings is not None
    url = authorization_url(
        "https://sso.example.com/auth?prompt=login",
        settings,
        state="the-state",
        nonce="the-nonce",
        verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sso.example.com", "/auth")
    query = parse_qs(parts.query)
    assert query == {
        "prompt": ["login"],
        "response_type": ["code"],
        "client_id": ["revring-router"],
        "redirect_uri": ["https://router.example.com/ui/oidc/callback"],
        "scope": ["openid profile email"],
        "state": ["the-state"],
        "nonce": ["the-nonce"],
        "code_challenge": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
        "code_challenge_method": ["S256"],
    }
    assert "s3cret-value" not in url and "dBjftJeZ4" not in url


def test_only_asymmetric_algorithms_are_accepted() -> None:
    assert accepted_algorithms(["RS256", "HS256", "none"]) == ["RS256"]
    assert accepted_algorithms(None) == ["RS256"]
    assert accepted_algorithms(["HS256", "none"]) == []
    assert accepted_algorithms(["ES256", "EdDSA"]) == ["ES256", "EdDSA"]


# -- the ID token -------------------------------------------------------------------

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"})
KEYS = KeySet.import_key_set({"keys": [KEY.as_dict(private=False)]})
NOW = 1_800_000_000.0


def settings() -> OidcSettings:
    found = oidc_settings_from_env(ENV)
    assert found is not None
    return found


def token(changes: dict[str, Any] | None = None, key: Any = KEY, alg: str = "RS256") -> str:
    claims: dict[str, Any] = {
        "iss": ENV["ROUTER_OIDC_ISSUER"],
        "aud": ENV["ROUTER_OIDC_CLIENT_ID"],
        "sub": "248289761001",
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 300,
        "nonce": "n-0S6_WzA2Mj",
        "preferred_username": "alice",
    }
    for name, value in (changes or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    header = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def check(id_token: str, now: float = NOW, nonce: str = "n-0S6_WzA2Mj") -> dict[str, Any]:
    return check_id_token(
        id_token, KEYS, settings=settings(), nonce=nonce, now=now, algorithms=["RS256", "ES256"]
    )


def test_a_good_token_gives_its_claims() -> None:
    claims = check(token())
    assert claims["sub"] == "248289761001"
    assert principal_name(claims) == "alice"


def test_a_token_within_the_leeway_of_its_expiry_is_accepted() -> None:
    assert check(token(), now=NOW + 300 + 30)["sub"]
    with pytest.raises(SignInRefused, match="expired"):
        check(token(), now=NOW + 300 + 61)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://evil.example.com"}, "issued by 'https://evil.example.com'"),
        ({"iss": None}, "lacks the claim(s) iss"),
        ({"aud": "someone-else"}, "meant for 'someone-else'"),
        ({"aud": ["someone-else", "another"]}, "meant for"),
        ({"aud": ["revring-router", "another"]}, "several audiences"),
        ({"exp": int(NOW) - 120}, "has expired"),
        ({"exp": None}, "lacks the claim(s) exp"),
        ({"iat": None}, "lacks the claim(s) iat"),
        ({"iat": int(NOW) + 3600}, "not valid yet"),
        ({"nbf": int(NOW) + 3600}, "not valid yet"),
        ({"nonce": "another"}, "nonce does not match"),
        ({"nonce": None}, "lacks the claim(s) nonce"),
        ({"sub": None}, "lacks the claim(s) sub"),
        ({"exp": "tomorrow"}, "claim 'exp' is not valid"),
    ],
)
def test_a_token_failing_a_check_is_refused_naming_it(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SignInRefused) as refused:
        check(token(changes))
    assert message in refused.value.message
    assert refused.value.status == 400


def test_several_audiences_are_accepted_with_azp_naming_this_client() -> None:
    changes = {"aud": ["revring-router", "another"], "azp": "revring-router"}
    assert check(token(changes))["azp"] == "revring-router"


def test_a_signature_by_another_key_is_refused() -> None:
    with pytest.raises(SignInRefused, match="signature does not match"):
        check(token(key=OTHER))
    tampered = token().split(".")
    tampered[1] = token({"preferred_username": "mallory"}).split(".")[1]
    with pytest.raises(SignInRefused, match="signature does not match"):
        check(".".join(tampered))


def test_an_unknown_key_id_asks_for_the_keys_again() -> None:
    with pytest.raises(UnknownSigningKey):
        check(token(key=RSAKey.generate_key(2048, parameters={"kid": "k2"})))


def test_unaccepted_algorithms_are_refused() -> None:
    secret = OctKey.import_key("a-shared-secret-of-32-bytes-long!")
    with pytest.raises(SignInRefused, match="algorithm the router does not accept"):
        check(token(key=secret, alg="HS256"))
    unsigned = token().rsplit(".", 1)[0].split(".")
    unsigned[0] = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    with pytest.raises(SignInRefused, match="algorithm the router does not accept"):
        check(".".join(unsigned) + ".")


def test_an_ec_key_of_the_wrong_type_for_the_header_is_refused() -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    with pytest.raises(SignInRefused):
        check(token(key=ec, alg="ES256"))


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "ey.ey.ey", "x" * 200])
def test_garbage_is_refused_as_not_a_jwt(garbage: str) -> None:
    with pytest.raises(SignInRefused, match="not a well-formed signed JWT"):
        check(garbage)


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({"preferred_username": "alice", "email": "a@x", "sub": "1"}, "alice"),
        ({"email": "a@x", "sub": "1"}, "a@x"),
        ({"sub": "1"}, "1"),
        ({"preferred_username": "\x1b[31mbob\n", "sub": "1"}, "[31mbob"),
        ({"preferred_username": "", "sub": "1"}, "1"),
        ({"preferred_username": 5, "sub": "1"}, "1"),
    ],
)
def test_the_principal_is_named_from_the_claims(claims: dict[str, Any], name: str) -> None:
    assert principal_name(claims) == name


def test_a_token_naming_nobody_is_refused() -> None:
    with pytest.raises(SignInRefused, match="names nobody"):
        principal_name({"sub": ""})
