"""`nightshift completion bash|zsh|fish`: print the shell code that completes nightshift's commands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "completion", help="print shell completion code (bash, zsh, fish)",
        description="Print the code that makes your shell complete nightshift's commands and options "
        "(argcomplete). Load it in your shell's startup file, e.g. in ~/.bashrc: "
        'eval "$(nightshift completion bash)"')
    parser.add_argument("shell", choices=("bash", "zsh", "fish", "tcsh", "powershell"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["nightshift"], shell=args.shell))
    return 0
