"""Shell completion: ``datareach completion bash|zsh|fish`` prints a script made from the CLI's own
argparse parser (subcommands at every level, their options, the choices of options that have
them; file names elsewhere).

Install it with one of::

    datareach completion bash > ~/.local/share/bash-completion/completions/datareach
    datareach completion zsh  > "${fpath[1]}/_datareach"     # or: source <(datareach completion zsh)
    datareach completion fish > ~/.config/fish/completions/datareach.fish
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from typing import Any

SHELLS = ("bash", "zsh", "fish")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:+,=/@%-]+$")


@dataclass
class Node:
    """One (sub)command: its path of subcommand words, subcommands and options."""

    path: tuple[str, ...]
    help: str = ""
    subs: dict[str, Node] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # options without a value
    valued: list[str] = field(default_factory=list)  # options that take a value
    choices: dict[str, list[str]] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)


def tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help: str = "") -> Node:
    node = Node(path, help)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                if _SAFE_WORD.match(name):
                    node.subs[name] = tree(sub, (*path, name), str(helps.get(name, "")))
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:  # a positional: its choices, if it has them, are completed
            if action.choices is not None and not isinstance(action.choices, dict) and "" not in node.choices:
                node.choices[""] = [str(c) for c in action.choices if _SAFE_WORD.match(str(c))]
            continue
        opts = [o for o in action.option_strings if _SAFE_WORD.match(o)]
        (node.flags if action.nargs == 0 else node.valued).extend(opts)
        for o in opts:
            node.helps[o] = str(action.help or "")
            if action.choices is not None and not isinstance(action.choices, dict):
                node.choices[o] = [str(c) for c in action.choices if _SAFE_WORD.match(str(c))]
    if path == ("audit",):  # --format's choices come from report.formats (plugins add theirs)
        from datareach.report.formats import names

        node.choices["--format"] = [n for n in names() if _SAFE_WORD.match(n)]
    return node


def _walk(node: Node) -> list[Node]:
    out = [node]
    for sub in node.subs.values():
        out += _walk(sub)
    return out


def bash(root: Node, prog: str = "datareach") -> str:
    fn = "_" + re.sub(r"\W", "_", prog)
    subs, opts, valued, choices = [], [], [], []
    for n in _walk(root):
        key = " ".join(n.path)
        if n.subs:
            subs.append(f'        "{key}") echo "{" ".join(n.subs)}" ;;')
        opts.append(f'        "{key}") echo "{" ".join(n.flags + n.valued)}" ;;')
        if n.valued:
            valued.append(f'        "{key}") echo " {" ".join(n.valued)} " ;;')
        for o, cs in n.choices.items():
            choices.append(f'        "{(key + " " + o).strip()}") echo "{" ".join(cs)}" ;;')
    nl = "\n"
    return f"""# bash completion for {prog} (written by `{prog} completion bash`)
{fn}_subs() {{ case "$1" in
{nl.join(subs)}
    esac; }}
{fn}_opts() {{ case "$1" in
{nl.join(opts)}
    esac; }}
{fn}_valued() {{ case "$1" in
{nl.join(valued)}
    esac; }}
{fn}_choices() {{ case "$1" in
{nl.join(choices)}
    esac; }}
{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" path="" i w skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        if [[ "$w" == -* ]]; then
            [[ "$({fn}_valued "$path")" == *" $w "* ]] && skip=1
            continue
        fi
        [[ " $({fn}_subs "$path") " == *" $w "* ]] && path="${{path:+$path }}$w"
    done
    ((COMP_CWORD > 0)) && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local choices
    choices="$({fn}_choices "${{path:+$path }}$prev")"
    if [[ -n "$choices" ]]; then
        COMPREPLY=($(compgen -W "$choices" -- "$cur")); return 0
    fi
    if [[ "$prev" == -* && "$({fn}_valued "$path")" == *" $prev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur")); return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$({fn}_opts "$path")" -- "$cur")); return 0
    fi
    local subs
    subs="$({fn}_subs "$path")$({fn}_choices "$path")"
    if [[ -n "$subs" ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur")); return 0
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}}
complete -o filenames -F {fn} {prog}
"""


def zsh(root: Node, prog: str = "datareach") -> str:
    return (f"#compdef {prog}\n# zsh completion for {prog} (written by `{prog} completion zsh`): the bash\n"
            "# completion, through zsh's bashcompinit\n"
            "autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash(root, prog))


def _fish_quote(text: str) -> str:
    text = " ".join(text.split())[:80]
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(root: Node, prog: str = "datareach") -> str:
    lines = [f"# fish completion for {prog} (written by `{prog} completion fish`)", f"complete -c {prog} -e"]
    for n in _walk(root):
        if not n.path:
            cond = "__fish_use_subcommand"
        else:
            cond = "; and ".join(f"__fish_seen_subcommand_from {w}" for w in n.path)
            if n.subs:
                cond += "; and not __fish_seen_subcommand_from " + " ".join(n.subs)
        for name, sub in n.subs.items():
            lines.append(f"complete -c {prog} -f -n {_fish_quote(cond)} -a {name} -d {_fish_quote(sub.help)}")
        if "" in n.choices:
            lines.append(f"complete -c {prog} -f -n {_fish_quote(cond)} -a {_fish_quote(' '.join(n.choices['']))}")
        for o in n.flags + n.valued:
            spec = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
            extra = ""
            if o in n.valued:
                extra = " -r"
                if o in n.choices:
                    extra += " -f -a " + _fish_quote(" ".join(n.choices[o]))
            lines.append(f"complete -c {prog} -n {_fish_quote(cond)} {spec}{extra} -d {_fish_quote(n.helps.get(o, ''))}")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    root = tree(parser)
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](root, parser.prog)


def add_completion_parser(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=SHELLS, help="the shell")


def run_completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    sys.stdout.write(script(args.shell, parser))
    return 0
