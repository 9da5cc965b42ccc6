"""Named users of the console and the admin API (DESIGN.md section 14): the roles and their
order, the `ROUTER_USERS_FILE` YAML read with every problem at its line, written back
atomically, and argon2 hashes of passwords and personal API tokens.

```yaml
users:
  - name: alice
    role: admin                         # viewer | operator | admin
    password_hash: "$argon2id$v=19$..."  # written by `revring-router user add`
    tokens: ["$argon2id$..."]           # personal API tokens, hashed
```

A personal token reads `rr_<user>_<id>_<secret>`: the user's name and the id of its hash
(the first characters of the hash's salt) say which one hash to verify, since argon2 is
slow on purpose. Parsing and hashing are pure; `read_users_file` and `write_users_file`
are the file's I/O (the write: a temporary file, mode 0600, then `os.replace`).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # each may do what those before may
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
TOKEN_PREFIX = "rr_"  # noqa: S105 (a prefix, not a secret)
TOKEN_ID_LENGTH = 10  # characters of the hash's salt that name a token's hash
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()  # argon2id, RFC 9106's low-memory profile (argon2-cffi's default)


def role_named(text: object) -> Role | None:
    """`text` as a role, or None when it names none."""
    return next((role for role in ROLES if role == text), None)


def role_allows(role: Role, needed: Role) -> bool:
    """Whether `role` may do what `needed` may (viewer < operator < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user's name (or "token" for `ROUTER_ADMIN_TOKEN`), their
    role, and how they proved it (`password`, `token`, `personal token`, `oidc`)."""

    name: str
    role: Role
    via: str = "password"

    def describe(self) -> str:
        return f"{self.name} ({self.role})"


ADMIN_TOKEN_ACTOR = "token"  # noqa: S105 (the actor name of ROUTER_ADMIN_TOKEN)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str | None = field(default=None, repr=False)
    tokens: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Users:
    """The users of one reading of the file, by name."""

    by_name: dict[str, User] = field(default_factory=dict)

    @classmethod
    def of(cls, users: Iterable[User]) -> Users:
        return cls({user.name: user for user in users})

    def find(self, name: str) -> User | None:
        return self.by_name.get(name)

    def __iter__(self) -> Iterator[User]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    def with_user(self, user: User) -> Users:
        return Users({**self.by_name, user.name: user})

    def without(self, name: str) -> Users:
        return Users({key: user for key, user in self.by_name.items() if key != name})


# --- reading and writing the file ---------------------------------------------------------


@dataclass(frozen=True)
class UsersProblem:
    line: int  # 1-based
    column: int  # 1-based
    message: str


class UsersFileInvalid(Exception):
    """A users file that cannot be used; `problems` holds every one, located."""

    def __init__(self, path: str, problems: Sequence[UsersProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(
            "\n".join(f"{path}:{p.line}:{p.column}: {p.message}" for p in self.problems)
        )


_USER_KEYS = ("name", "role", "password_hash", "tokens")


def _at(node: yaml.Node, message: str) -> UsersProblem:
    return UsersProblem(node.start_mark.line + 1, node.start_mark.column + 1, message)


def _is_argon2(text: str) -> bool:
    try:
        _hasher.check_needs_rehash(text)  # parses the encoded hash, raises on garbage
    except (InvalidHashError, ValueError):
        return False
    return text.startswith("$argon2")


def parse_users(text: str, path: str = "users.yaml") -> Users:
    """The users a file's text holds, or `UsersFileInvalid` naming every problem."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise UsersFileInvalid(
            path, [UsersProblem(line, column, f"not YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise UsersFileInvalid(path, [UsersProblem(1, 1, f"not YAML: {exc}")]) from None
    if document is None:
        return Users()
    problems: list[UsersProblem] = []
    if not isinstance(document, yaml.MappingNode):
        raise UsersFileInvalid(path, [_at(document, "expected a mapping with a `users` list")])
    users_node: yaml.Node | None = None
    for key, value in document.value:
        if key.value == "users":
            users_node = value
        else:
            problems.append(_at(key, f"unknown key {key.value!r} (the file holds `users`)"))
    found: list[User] = []
    if users_node is None:
        problems.append(_at(document, "no `users` list"))
    elif isinstance(users_node, yaml.ScalarNode) and users_node.tag.endswith(":null"):
        pass  # `users:` with nothing under it
    elif not isinstance(users_node, yaml.SequenceNode):
        problems.append(_at(users_node, "`users` must be a list of users"))
    else:
        seen: set[str] = set()
        for item in users_node.value:
            user = _user(item, problems)
            if user is None:
                continue
            if user.name in seen:
                problems.append(_at(item, f"user {user.name!r} is listed twice"))
                continue
            seen.add(user.name)
            found.append(user)
    if problems:
        raise UsersFileInvalid(path, problems)
    return Users.of(found)


def _scalar(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null"):
        return str(node.value)
    return None


def _user(node: yaml.Node, problems: list[UsersProblem]) -> User | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(_at(node, "each user must be a mapping (name, role, password_hash)"))
        return None
    values: dict[str, yaml.Node] = {}
    before = len(problems)
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name not in _USER_KEYS:
            problems.append(_at(key, f"unknown key {name!r}; a user has {', '.join(_USER_KEYS)}"))
        elif name in values:
            problems.append(_at(key, f"{name} is given twice"))
        else:
            values[name] = value
    name_node = values.get("name")
    name = _scalar(name_node) if name_node is not None else None
    if name_node is None:
        problems.append(_at(node, "a user needs a name"))
    elif name is None or not NAME_PATTERN.fullmatch(name):
        problems.append(_at(name_node, f"name {name!r} is not a user name: {NAME_RULE}"))
    role_node = values.get("role")
    role = role_named(_scalar(role_node)) if role_node is not None else None
    if role_node is None:
        problems.append(_at(node, f"user {name!r} needs a role ({' | '.join(ROLES)})"))
    elif role is None:
        problems.append(
            _at(role_node, f"role {_scalar(role_node)!r} is not one of {', '.join(ROLES)}")
        )
    password_hash = None
    hash_node = values.get("password_hash")
    if hash_node is not None:
        password_hash = _scalar(hash_node)
        if password_hash is not None and not _is_argon2(password_hash):
            problems.append(
                _at(hash_node, "password_hash is not an argon2 hash (write it with `user add`)")
            )
    tokens: list[str] = []
    tokens_node = values.get("tokens")
    if tokens_node is not None and _scalar(tokens_node) is not None:
        problems.append(_at(tokens_node, "tokens must be a list of argon2 hashes"))
    elif isinstance(tokens_node, yaml.SequenceNode):
        for token_node in tokens_node.value:
            token = _scalar(token_node)
            if token is None or not _is_argon2(token):
                problems.append(
                    _at(token_node, "a token is not an argon2 hash (make one with `user token`)")
                )
            else:
                tokens.append(token)
    if len(problems) > before or name is None or role is None:
        return None
    return User(name, role, password_hash, tuple(tokens))


def dump_users(users: Users) -> str:
    """The file's text for `users` (comments are not kept)."""
    listed: list[dict[str, Any]] = []
    for user in sorted(users, key=lambda u: u.name):
        entry: dict[str, Any] = {"name": user.name, "role": user.role}
        if user.password_hash is not None:
            entry["password_hash"] = user.password_hash
        if user.tokens:
            entry["tokens"] = list(user.tokens)
        listed.append(entry)
    header = (
        "# Users of revring-router's console and admin API; written by `revring-router user`.\n"
    )
    return header + yaml.safe_dump({"users": listed}, sort_keys=False, width=200)


def read_users_file(path: str | os.PathLike[str], *, missing_ok: bool = False) -> Users:
    """The users of the file at `path`; `UsersFileInvalid` when it cannot be read or used
    (`missing_ok`: a file that is not there holds no users)."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Users()
        raise UsersFileInvalid(shown, [UsersProblem(1, 1, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsersFileInvalid(shown, [UsersProblem(1, 1, f"cannot read it: {reason}")]) from None
    return parse_users(text, shown)


def write_users_file(path: str | os.PathLike[str], users: Users) -> None:
    """Replace the file at `path` with `users`, atomically: a temporary file beside it
    (mode 0600: it holds hashes), flushed to disk, then renamed over it."""
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(dump_users(users))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- passwords and personal tokens --------------------------------------------------------


def hash_secret(secret: str) -> str:
    """An argon2id hash of a password or a token."""
    return _hasher.hash(secret)


def secret_matches(encoded_hash: str, secret: str) -> bool:
    """Whether `secret` is the one `encoded_hash` was made from (slow: argon2)."""
    try:
        return _hasher.verify(encoded_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DECOY_HASH: list[str] = []


def check_password(users: Users, name: str, password: str) -> User | None:
    """The user whose name and password these are, or None. An unknown name costs a
    hash's verification too, so timing does not tell which names exist."""
    user = users.find(name)
    if user is None or user.password_hash is None:
        if not _DECOY_HASH:
            _DECOY_HASH.append(hash_secret(secrets.token_hex(16)))
        secret_matches(_DECOY_HASH[0], password)
        return None
    return user if secret_matches(user.password_hash, password) else None


def token_id(encoded_hash: str) -> str:
    """The id a token carries of its hash: the first characters of the hash's salt."""
    parts = encoded_hash.split("$")
    return parts[4][:TOKEN_ID_LENGTH].replace("+", "-").replace("/", "-") if len(parts) > 4 else ""


def new_token(user: User) -> tuple[str, User]:
    """A new personal token for `user` (shown once) and the user holding its hash."""
    secret = secrets.token_hex(24)
    while True:
        encoded = hash_secret(secret)
        identifier = token_id(encoded)
        if identifier and all(token_id(other) != identifier for other in user.tokens):
            break
    token = f"{TOKEN_PREFIX}{user.name}_{identifier}_{secret}"
    return token, replace(user, tokens=(*user.tokens, encoded))


def split_token(token: str) -> tuple[str, str] | None:
    """(user name, hash id) of a personal token's text, or None when it is not one."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    head, _, secret = token[len(TOKEN_PREFIX) :].rpartition("_")
    name, _, identifier = head.rpartition("_")
    if not name or not secret or len(identifier) != TOKEN_ID_LENGTH:
        return None
    return name, identifier


def token_user(users: Users, token: str) -> tuple[User, str] | None:
    """The user a personal token names and the one hash of theirs to verify it against,
    or None when no such user or hash exists (nothing slow is done then)."""
    parts = split_token(token)
    if parts is None:
        return None
    name, identifier = parts
    user = users.find(name)
    if user is None:
        return None
    encoded = next((h for h in user.tokens if token_id(h) == identifier), None)
    return None if encoded is None else (user, encoded)


def check_token(users: Users, token: str) -> User | None:
    """The user whose personal token this is, or None (slow: one argon2 verification,
    none when the token names no user or hash)."""
    found = token_user(users, token)
    if found is None:
        return None
    user, encoded = found
    return user if secret_matches(encoded, token.rpartition("_")[2]) else None


class UsersFile:
    """`ROUTER_USERS_FILE` as a running service holds it: read at start (`load`, which
    raises) and on every reload (`reload`, which keeps the users read before when the
    file is invalid, and raises so the reload can report why)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.users = Users()
        self.loaded_at: float | None = None

    def load(self, now: float) -> Users:
        """Read the file; `UsersFileInvalid` (the users stay) when it cannot be used."""
        self.users = read_users_file(self.path)
        self.loaded_at = now
        return self.users
