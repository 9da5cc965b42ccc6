"""`revring-router user add|remove|list|token` (DESIGN.md sections 3 and 14): the named users
of `ROUTER_USERS_FILE` (or `--file`), rewritten atomically (`router.operators.users`); a
running router picks a change up on its next reload (it watches the file, as rules.yaml).

Exit status: 0 done, 1 the user is unknown (or exists already) or the file cannot be
written, 2 a bad request (no file named, an invalid file, a bad name or password).
`add`, `remove` and `token` are recorded in the audit of the store (`--store`) as
`cli:<os user>` (`user.add`, `user.remove`, `user.token`); with no store there, the
change is made and the command says it was not recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys

from router.cli.audit import record_cli_change
from router.core.logs import printable
from router.operators import ROLES, Users, UsersFileInvalid
from router.operators.users import (
    MIN_PASSWORD_LENGTH,
    NAME_PATTERN,
    NAME_RULE,
    User,
    hash_secret,
    new_token,
    read_users_file,
    write_users_file,
)

INVALID = 2


def _fail(command: str, message: str, status: int = 1) -> int:
    print(f"revring-router user {command}: {printable(message)}", file=sys.stderr)
    return status


def _path(args: argparse.Namespace) -> str | None:
    return args.file or os.environ.get("ROUTER_USERS_FILE") or None


def _read(command: str, path: str) -> Users | int:
    """The file's users (none when it is not there yet), or the exit status of a failure."""
    try:
        return read_users_file(path, missing_ok=True)
    except UsersFileInvalid as exc:
        for problem in exc.problems:
            print(f"{path}:{problem.line}:{problem.column}: error: {problem.message}")
        return _fail(command, f"{path} is invalid; fix it first", INVALID)


def _write(command: str, path: str, users: Users) -> int | None:
    try:
        write_users_file(path, users)
    except OSError as exc:
        return _fail(command, f"cannot write {path}: {exc.strerror or exc}")
    return None


def _audited(args: argparse.Namespace, action: str, details: dict[str, str]) -> None:
    """Record the change in the audit of `args.store`; say so when it cannot be."""
    why = asyncio.run(record_cli_change(args.store, action, f"user:{args.name}", details))
    if why is not None:
        print(f"revring-router user: not recorded in the audit: {printable(why)}", file=sys.stderr)


def _password(command: str, from_stdin: bool) -> str | int:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt):
            return _fail(command, "no password given", INVALID)
        if again != password:
            return _fail(command, "the two passwords differ", INVALID)
    if len(password) < MIN_PASSWORD_LENGTH:
        return _fail(
            command, f"the password must have at least {MIN_PASSWORD_LENGTH} characters", INVALID
        )
    return password


def _setup(command: str, args: argparse.Namespace) -> tuple[str, Users] | int:
    path = _path(args)
    if path is None:
        return _fail(command, "set ROUTER_USERS_FILE (or pass --file) to the users file", INVALID)
    users = _read(command, path)
    return users if isinstance(users, int) else (path, users)


def cmd_user_add(args: argparse.Namespace) -> int:
    if not NAME_PATTERN.fullmatch(args.name):
        return _fail("add", f"{args.name!r} is not a user name: {NAME_RULE}", INVALID)
    found = _setup("add", args)
    if isinstance(found, int):
        return found
    path, users = found
    existing = users.find(args.name)
    if existing is not None and not args.replace:
        return _fail(
            "add", f"user {args.name} exists; pass --replace to set a new role and password"
        )
    password = _password("add", args.password_stdin)
    if isinstance(password, int):
        return password
    tokens = existing.tokens if existing is not None else ()
    user = User(args.name, args.role, hash_secret(password), tokens)
    failed = _write("add", path, users.with_user(user))
    if failed is not None:
        return failed
    print(f"{'replaced' if existing else 'added'} user {args.name} ({args.role}) in {path}")
    _audited(args, "user.add", {"role": args.role, "replaced": "yes" if existing else "no"})
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    found = _setup("remove", args)
    if isinstance(found, int):
        return found
    path, users = found
    if users.find(args.name) is None:
        return _fail("remove", f"no user {args.name} in {path}")
    failed = _write("remove", path, users.without(args.name))
    if failed is not None:
        return failed
    print(f"removed user {args.name} from {path}")
    _audited(args, "user.remove", {})
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    found = _setup("list", args)
    if isinstance(found, int):
        return found
    _, users = found
    listed = sorted(users, key=lambda user: user.name)
    if args.json:
        for user in listed:
            shown = {
                "name": user.name,
                "role": user.role,
                "password": user.password_hash is not None,
                "tokens": len(user.tokens),
            }
            print(json.dumps(shown))
        return 0
    if not listed:
        print("no users")
        return 0
    width = max(len("NAME"), *(len(user.name) for user in listed))
    print(f"{'NAME':<{width}}  {'ROLE':<8}  PASSWORD  TOKENS")
    for user in listed:
        password = "yes" if user.password_hash is not None else "no"
        print(f"{user.name:<{width}}  {user.role:<8}  {password:<8}  {len(user.tokens)}")
    return 0


def cmd_user_token(args: argparse.Namespace) -> int:
    found = _setup("token", args)
    if isinstance(found, int):
        return found
    path, users = found
    user = users.find(args.name)
    if user is None:
        return _fail("token", f"no user {args.name} in {path}")
    if args.replace:
        user = User(user.name, user.role, user.password_hash, ())
    token, user = new_token(user)
    failed = _write("token", path, users.with_user(user))
    if failed is not None:
        return failed
    print(token)
    print(
        f"a new personal API token of {args.name} (shown this once; only its hash is kept"
        f" in {path}); send it as `Authorization: Bearer <token>` to /admin/*",
        file=sys.stderr,
    )
    _audited(args, "user.token", {"others_revoked": "yes" if args.replace else "no"})
    return 0


def add_user_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], store_default: str
) -> None:
    user = commands.add_parser(
        "user", help="manage the console's and admin API's users (ROUTER_USERS_FILE)"
    )
    actions = user.add_subparsers(dest="user_command", required=True)
    file_help = "the users file (default: ROUTER_USERS_FILE)"
    store_help = "the store whose audit records the change (default: ROUTER_STORE)"

    add = actions.add_parser("add", help="add a user (or, with --replace, change one)")
    add.add_argument("name", metavar="NAME", help="the user's name (what they sign in with)")
    add.add_argument("--role", choices=ROLES, required=True, help="viewer < operator < admin")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input (default: ask for it)",
    )
    add.add_argument(
        "--replace", action="store_true", help="set a new role and password of an existing user"
    )
    add.add_argument("--file", metavar="FILE", help=file_help)
    add.add_argument("--store", default=store_default, metavar="URL", help=store_help)
    add.set_defaults(func=cmd_user_add)

    remove = actions.add_parser("remove", help="remove a user (and their tokens)")
    remove.add_argument("name", metavar="NAME", help="the user to remove")
    remove.add_argument("--file", metavar="FILE", help=file_help)
    remove.add_argument("--store", default=store_default, metavar="URL", help=store_help)
    remove.set_defaults(func=cmd_user_remove)

    listing = actions.add_parser("list", help="list the users, their roles and token counts")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--file", metavar="FILE", help=file_help)
    listing.set_defaults(func=cmd_user_list)

    token = actions.add_parser("token", help="make a personal API token for a user; prints it once")
    token.add_argument("name", metavar="NAME", help="the user the token acts as")
    token.add_argument("--replace", action="store_true", help="revoke the user's other tokens")
    token.add_argument("--file", metavar="FILE", help=file_help)
    token.add_argument("--store", default=store_default, metavar="URL", help=store_help)
    token.set_defaults(func=cmd_user_token)
