"""`beacon token`: create a bearer token and add its SHA-256 to a tokens file."""

from __future__ import annotations

import argparse

from beacon.secret_files import write_private_bytes
from beacon.tokens import TOKEN_ENV, Role, add_token


def run(args: argparse.Namespace) -> int:
    role = Role(args.role)
    token = add_token(args.tokens_file, args.name, role)
    print(f"token {args.name!r} ({role.value}) added to {args.tokens_file}")
    if args.out is not None:
        write_private_bytes(args.out, (token + "\n").encode("utf-8"))
        print(f"the token is in {args.out} (mode 600); pass --token-file {args.out}")
    else:
        print("keep it secret; it is shown once and only its hash is stored:")
        print(token)
        print(f"use it with: export {TOKEN_ENV}=...  or --token-file FILE")
    return 0
